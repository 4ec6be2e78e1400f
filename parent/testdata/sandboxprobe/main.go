// Command sandboxprobe is built and run by parent's tests (see
// sandbox_threads_linux_test.go), once with cgo and once without. As root, it
// sandboxes itself with parent.Sandbox (or with SetNoNewPrivs and Landlock
// alone), then tries, from threads that existed before and from many new
// ones, to get out: open a file outside the rules, connect to an abstract
// unix socket and to a TCP port not allowed, bind a port not allowed,
// signal a process outside, become root again. It prints one JSON report
// on stdout.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/parent"
)

// Report is what the probe prints. Escapes counts, by check, the threads
// that did what the sandbox must refuse (or failed with another error than
// the refusal); Failures counts those refused what the rules allow.
type Report struct {
	Cgo        bool                 `json:"cgo"`
	GoCanReach bool                 `json:"go_can_reach_all_threads"`
	Workers    int                  `json:"workers"`
	Threads    int                  `json:"threads"`  // distinct thread ids among the workers
	Refusals   []string             `json:"refusals"` // every check that must be refused, in order
	Allowances []string             `json:"allowances"`
	Escapes    map[string]int       `json:"escapes"`
	Failures   map[string]int       `json:"failures"`
	Examples   []string             `json:"examples"`
	Sandbox    parent.SandboxResult `json:"sandbox"`
	Error      string               `json:"error,omitempty"`
}

func main() {
	mode := flag.String("mode", "sandbox", "sandbox (drop to -user and everything) or landlock (SetNoNewPrivs and Landlock only)")
	userName := flag.String("user", "nobody", "user to drop to")
	roDir := flag.String("ro", "", "read-only tree")
	rwDir := flag.String("rw", "", "read-write tree")
	inside := flag.String("inside", "", "a file beneath -ro that must stay readable")
	outside := flag.String("outside", "", "a file outside every rule")
	abstract := flag.String("abstract", "", "an abstract unix socket name (without @) that must not be reachable")
	victim := flag.Int("victim", 0, "pid of a process outside the sandbox that must not be signalled")
	connectOK := flag.Int("connect-ok", 0, "a TCP port on 127.0.0.1 that may be connected to")
	connectNo := flag.Int("connect-no", 0, "a TCP port on 127.0.0.1 that may not")
	bindNo := flag.Int("bind-no", 0, "a TCP port that may not be bound")
	workers := flag.Int("workers", 64, "goroutines started after the sandbox, each on a thread of its own")
	pre := flag.Int("pre", 8, "goroutines locked to threads before the sandbox")
	flag.Parse()

	_, _, e := syscall.AllThreadsSyscall(syscall.SYS_GETPID, 0, 0, 0)
	rep := Report{Cgo: cgoLinked(), GoCanReach: e == 0, Escapes: map[string]int{}, Failures: map[string]int{}}
	out := json.NewEncoder(os.Stdout)

	// Threads that exist before the sandbox, parked: these are the ones a
	// one-thread restriction misses.
	release := make(chan struct{})
	pres := make([]chan func(), *pre)
	var started sync.WaitGroup
	for i := range pres {
		pres[i] = make(chan func())
		started.Add(1)
		go func(run chan func()) {
			runtime.LockOSThread()
			started.Done()
			<-release
			(<-run)()
		}(pres[i])
	}
	started.Wait()

	cfg := parent.LandlockConfig{
		ReadOnly:   []string{*roDir},
		ReadWrite:  []string{*rwDir},
		ConnectTCP: []uint16{uint16(*connectOK)},
	}
	// Where privsep has no filter for MPTCP sockets, restricting TCP must
	// fail naming it, having done nothing; best effort then applies the
	// rest and reports exactly that.
	mptcpOpen := !parent.TCPRestrictable()
	if mptcpOpen {
		var ue *parent.LandlockUnsupportedError
		_, err := parent.Sandbox(parent.SandboxConfig{Landlock: &cfg})
		if !errors.As(err, &ue) || !slices.Equal(ue.Missing, []string{"IPPROTO_MPTCP"}) {
			rep.Error = fmt.Sprintf("on %s, Sandbox restricting TCP: %v, want a *LandlockUnsupportedError naming IPPROTO_MPTCP", runtime.GOARCH, err)
			out.Encode(rep)
			os.Exit(1)
		}
		cfg.BestEffort = true
	}
	var uid int
	switch *mode {
	case "sandbox":
		cred, err := parent.LookupCredential(*userName, "")
		if err != nil {
			rep.Error = err.Error()
			out.Encode(rep)
			os.Exit(1)
		}
		uid = cred.UID
		rep.Sandbox, err = parent.Sandbox(parent.SandboxConfig{Credential: &cred, Landlock: &cfg})
		if err != nil {
			rep.Error = err.Error()
			out.Encode(rep)
			os.Exit(1)
		}
	case "landlock":
		uid = os.Geteuid()
		if _, err := parent.SetNoNewPrivs(); err != nil {
			rep.Error = err.Error()
			out.Encode(rep)
			os.Exit(1)
		}
		res, err := parent.Landlock(cfg)
		rep.Sandbox.Landlock = res
		if err != nil {
			rep.Error = err.Error()
			out.Encode(rep)
			os.Exit(1)
		}
	default:
		fmt.Fprintf(os.Stderr, "sandboxprobe: unknown mode %q\n", *mode)
		os.Exit(2)
	}

	if got := rep.Sandbox.Landlock.NotApplied; mptcpOpen != (got != nil) || (mptcpOpen && !slices.Equal(got, []string{"IPPROTO_MPTCP"})) {
		rep.Error = fmt.Sprintf("Landlock reports %q not applied; want IPPROTO_MPTCP only where privsep has no filter (%s: %v)", got, runtime.GOARCH, mptcpOpen)
		out.Encode(rep)
		os.Exit(1)
	}

	var mu sync.Mutex
	tids := map[int]bool{}
	note := func(m map[string]int, check string, err error) {
		mu.Lock()
		defer mu.Unlock()
		m[check]++
		if len(rep.Examples) < 20 {
			rep.Examples = append(rep.Examples, fmt.Sprintf("%s: %v", check, err))
		}
	}
	// refused checks that err is the refusal want; nil (success) or any
	// other error is an escape.
	var seenMu sync.Mutex
	seen := map[string]bool{}
	record := func(list *[]string, check string) {
		seenMu.Lock()
		defer seenMu.Unlock()
		if !seen[check] {
			seen[check] = true
			*list = append(*list, check)
		}
	}
	refused := func(check string, err, want error) {
		record(&rep.Refusals, check)
		if !errors.Is(err, want) {
			note(rep.Escapes, check, err)
		} else if os.Getenv("SANDBOXPROBE_DEBUG") != "" {
			note(map[string]int{}, "refused "+check, err)
		}
	}
	allowed := func(check string, err error) {
		record(&rep.Allowances, check)
		if err != nil {
			note(rep.Failures, check, err)
		}
	}
	probe := func(i int) {
		mu.Lock()
		tids[unix.Gettid()] = true
		mu.Unlock()

		fd, err := unix.Open(*outside, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			unix.Close(fd)
		}
		refused("open outside the rules", err, unix.EACCES)
		_, err = os.ReadFile(*inside)
		allowed("read beneath ReadOnly", err)
		err = os.WriteFile(filepath.Join(*rwDir, fmt.Sprintf("w%d", i)), []byte("x"), 0o644)
		allowed("create beneath ReadWrite", err)
		err = os.WriteFile(filepath.Join(*roDir, fmt.Sprintf("w%d", i)), []byte("x"), 0o644)
		refused("create beneath ReadOnly", err, unix.EACCES)

		refused("connect to an abstract unix socket", connectUnix("@"+*abstract), unix.EPERM)
		refused("signal a process outside", unix.Kill(*victim, 0), unix.EPERM)
		refused("connect to a TCP port not allowed", connectTCP(*connectNo), unix.EACCES)
		allowed("connect to a TCP port allowed", connectTCP(*connectOK))
		refused("bind a TCP port not allowed", bindTCP(*bindNo), unix.EACCES)
		if mptcpOpen {
			// What NotApplied says stays allowed is allowed.
			err := mptcpSocket()
			if errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.ENOPROTOOPT) {
				err = nil // the kernel has no MPTCP, or has it off
			}
			allowed("make an MPTCP socket (no filter on this GOARCH: reported not applied)", err)
		} else {
			refused("bind a TCP port not allowed with net.Listen (MPTCP where it can)", bindDefault(*bindNo), unix.EACCES)
			refused("make an MPTCP socket", mptcpSocket(), unix.EACCES)
		}

		record(&rep.Refusals, "run without no_new_privs")
		record(&rep.Refusals, "run with other uids")
		if v, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); err != nil || v != 1 {
			note(rep.Escapes, "run without no_new_privs", fmt.Errorf("PR_GET_NO_NEW_PRIVS = %d, %v", v, err))
		}
		// This thread's own ids: getresuid reads the calling thread's.
		if r, e, s := unix.Getresuid(); r != uid || e != uid || s != uid {
			note(rep.Escapes, "run with other uids", fmt.Errorf("%d/%d/%d, want %d", r, e, s, uid))
		}
		if *mode == "sandbox" {
			record(&rep.Refusals, "become root again")
			_, _, e := unix.RawSyscall(unix.SYS_SETRESUID, 0, 0, 0)
			if e == 0 {
				note(rep.Escapes, "become root again", errors.New("setresuid(0, 0, 0) succeeded"))
			} else if e != unix.EPERM {
				note(rep.Escapes, "become root again", e)
			}
		}
	}

	// Every worker holds its thread until all have probed, so that no two
	// share one.
	var done, all sync.WaitGroup
	hold := make(chan struct{})
	total := *pre + *workers
	all.Add(total)
	done.Add(total)
	close(release)
	for i, run := range pres {
		run <- func() { probe(i); all.Done(); <-hold; done.Done() }
	}
	for i := range *workers {
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends with it
			probe(*pre + i)
			all.Done()
			<-hold
			done.Done()
		}()
	}
	all.Wait()
	close(hold)
	done.Wait()
	rep.Workers = total
	rep.Threads = len(tids)
	out.Encode(rep)
}

// closeIfMade closes what a call made, if it made it, and returns the
// call's error: a probe asks only whether the call was allowed.
func closeIfMade(c io.Closer, err error) error {
	if err == nil {
		c.Close()
	}
	return err
}

func connectUnix(addr string) error {
	return closeIfMade(net.Dial("unix", addr))
}

func connectTCP(port int) error {
	return closeIfMade(net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port)))
}

// bindTCP binds with plain TCP.
func bindTCP(port int) error {
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	return closeIfMade(lc.Listen(context.Background(), "tcp4", fmt.Sprintf("127.0.0.1:%d", port)))
}

// bindDefault binds as net.Listen does, with MPTCP where the kernel has it.
func bindDefault(port int) error {
	return closeIfMade(net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port)))
}

// mptcpSocket makes an MPTCP socket, which Landlock's TCP rules do not
// cover: it must be refused.
func mptcpSocket() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 262)
	if err == nil {
		unix.Close(fd)
	}
	return err
}
