package parent_test

// The sandbox must hold on every thread, in programs linked with cgo (the
// default wherever a C compiler is present) and without. The test builds
// testdata/sandboxprobe both ways; each build sandboxes itself as root and
// then, from threads that existed before and from 64 new ones, tries to
// get out. Before the fix, a cgo build restricted only the calling thread
// and every other thread got out.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/privsep-go/privsep/internal/hostile"
	"github.com/privsep-go/privsep/internal/testutil"
)

// probeReport mirrors the report sandboxprobe prints.
type probeReport struct {
	Cgo        bool           `json:"cgo"`
	GoCanReach bool           `json:"go_can_reach_all_threads"`
	Workers    int            `json:"workers"`
	Threads    int            `json:"threads"`
	Refusals   []string       `json:"refusals"`
	Allowances []string       `json:"allowances"`
	Escapes    map[string]int `json:"escapes"`
	Failures   map[string]int `json:"failures"`
	Examples   []string       `json:"examples"`
	Error      string         `json:"error"`
}

// buildProbe builds testdata/sandboxprobe with cgo on or off into dir.
func buildProbe(t *testing.T, dir string, cgo bool) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("needs the go tool to build the probe program: %v", err)
	}
	env := "CGO_ENABLED=0"
	name := "probe-nocgo"
	if cgo {
		if _, err := exec.LookPath("gcc"); err != nil {
			if _, err := exec.LookPath("cc"); err != nil {
				t.Logf("no cgo probe: needs a C compiler")
				return ""
			}
		}
		env, name = "CGO_ENABLED=1", "probe-cgo"
	}
	out := filepath.Join(dir, name)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The probe runs on the architecture this test runs on (GOARCH=386 on
	// an amd64 host, say).
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", out, "./testdata/sandboxprobe")
	cmd.Env = append(os.Environ(), env, "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		host, _ := exec.CommandContext(ctx, goTool, "env", "GOHOSTARCH").Output()
		if cgo && strings.TrimSpace(string(host)) != runtime.GOARCH {
			// A C toolchain for another architecture (multilib headers) is
			// often missing; the pure-Go probe still runs.
			t.Logf("no cgo probe for %s on a %s host: go build: %v\n%s", runtime.GOARCH, host, err, b)
			return ""
		}
		t.Fatalf("go build (%s) ./testdata/sandboxprobe: %v\n%s", env, err, b)
	}
	return out
}

// sandboxTargets are what the probe tries to reach from inside: an
// abstract unix socket of this (root) process, a process of the user the
// probe drops to, TCP ports.
type sandboxTargets struct {
	abstract                   string
	victim                     int
	connectOK, connectNo, bind int
}

func startSandboxTargets(t *testing.T, uid, gid int) sandboxTargets {
	t.Helper()
	var tg sandboxTargets
	tg.abstract = "privsep-test-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ln, err := net.Listen("unix", "@"+tg.abstract)
	if err != nil {
		t.Fatal(err)
	}
	testutil.AcceptAndClose(t, ln)
	for _, p := range []*int{&tg.connectOK, &tg.connectNo} {
		_, port, err := net.SplitHostPort(testutil.ListenLoopback(t))
		testutil.Must(t, err)
		*p, err = strconv.Atoi(port)
		testutil.Must(t, err)
	}
	// A free port: bound and released.
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg.bind = l.Addr().(*net.TCPAddr).Port
	l.Close()

	// A process of the same user as the sandboxed one, started outside:
	// only Landlock's signal scope stops the signal.
	victim := exec.Command("sleep", "120")
	victim.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	if err := victim.Start(); err != nil {
		t.Fatalf("starting the victim: %v", err)
	}
	t.Cleanup(func() { victim.Process.Kill(); victim.Wait() })
	tg.victim = victim.Process.Pid
	return tg
}

// secSandbox is the reliability table section of the sandbox attacks.
const secSandbox = "parent: escaping the sandbox from other threads (cgo and not)"

// TestHostileSandboxAllThreads performs the escape: after Sandbox (or
// SetNoNewPrivs and Landlock alone), many goroutines on threads of their
// own, some of which existed before, try every way out. None may succeed,
// with cgo or without.
func TestHostileSandboxAllThreads(t *testing.T) {
	t.Parallel()
	testutil.NeedRoot(t, "the probe drops to nobody and signals its processes")
	if abi := testutil.LandlockABI(); abi < 6 {
		t.Skipf("needs Landlock ABI 6 (network rules and scopes); the kernel has %d", abi)
	}
	uid, gid := nobody(t)
	dir := testutil.PublicDir(t, "privsep-parent-test-")
	ro, rw := filepath.Join(dir, "ro"), filepath.Join(dir, "rw")
	testutil.Must(t, os.Mkdir(ro, 0o755))
	testutil.Must(t, os.Mkdir(rw, 0o777))
	testutil.Must(t, os.Chmod(rw, 0o777))
	testutil.Must(t, os.Chmod(ro, 0o777)) // only Landlock keeps nobody from creating here
	inside, outside := filepath.Join(ro, "inside"), filepath.Join(dir, "outside")
	testutil.Must(t, os.WriteFile(inside, []byte("in"), 0o644))
	testutil.Must(t, os.WriteFile(outside, []byte("out"), 0o644))
	tg := startSandboxTargets(t, uid, gid)

	for _, cgo := range []bool{true, false} {
		prog := buildProbe(t, dir, cgo)
		if prog == "" {
			continue
		}
		for _, mode := range []string{"sandbox", "landlock"} {
			name := mode
			if cgo {
				name += "/cgo"
			} else {
				name += "/nocgo"
			}
			t.Run(name, func(t *testing.T) {
				rw := filepath.Join(rw, name)
				testutil.Must(t, os.MkdirAll(rw, 0o777))
				testutil.Must(t, os.Chmod(rw, 0o777))
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				cmd := exec.CommandContext(ctx, prog, "-mode", mode, "-ro", ro, "-rw", rw,
					"-inside", inside, "-outside", outside, "-abstract", tg.abstract, "-victim", strconv.Itoa(tg.victim),
					"-connect-ok", strconv.Itoa(tg.connectOK), "-connect-no", strconv.Itoa(tg.connectNo),
					"-bind-no", strconv.Itoa(tg.bind), "-workers", "64", "-pre", "8")
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				runErr := cmd.Run()
				var rep probeReport
				if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
					t.Fatalf("probe: %v; stdout %q, stderr %q (report: %v)", runErr, stdout.String(), stderr.String(), err)
				}
				if runErr != nil || rep.Error != "" {
					t.Fatalf("probe: %v: %s; stderr %q", runErr, rep.Error, stderr.String())
				}
				if rep.Cgo != cgo || rep.GoCanReach == cgo {
					t.Fatalf("probe built with cgo %v reports cgo %v, Go can reach all threads %v", cgo, rep.Cgo, rep.GoCanReach)
				}
				if rep.Workers != 72 || rep.Threads != rep.Workers {
					t.Errorf("%d workers ran on %d distinct threads, want 72 on 72", rep.Workers, rep.Threads)
				}
				least := 9
				if mptcpUnfiltered() {
					least -= 2 // no MPTCP refusals to check: the probe checks they are reported instead
				}
				if len(rep.Refusals) < least {
					t.Errorf("the probe ran %d checks (%q), want at least %d", len(rep.Refusals), rep.Refusals, least)
				}
				for _, check := range rep.Refusals {
					n := rep.Escapes[check]
					hostile.Row(t, secSandbox, check, fmt.Sprintf("refused on all %d threads", rep.Workers),
						fmt.Sprintf("refused on %d of %d threads", rep.Workers-n, rep.Workers))
					if n > 0 {
						t.Errorf("%s: %d of %d threads got out", check, n, rep.Workers)
					}
				}
				for _, check := range rep.Allowances {
					if n := rep.Failures[check]; n > 0 {
						t.Errorf("%s: refused on %d of %d threads, want allowed", check, n, rep.Workers)
					}
				}
				if t.Failed() {
					t.Logf("examples: %q", rep.Examples)
				}
			})
		}
	}
}
