//go:build linux

package server

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/policy"
	"github.com/privsep-go/privsep/protocol"
)

// loadSessionsEnv overrides how many sessions BenchmarkServerSessions
// holds (default 10000; 200 with -short).
const loadSessionsEnv = "PRIVSEP_LOAD_SESSIONS"

// BenchmarkServerSessions holds many sessions at once against one server in
// this process, clients over the unix socket from this process too: every
// client says hello and has one file opened, all of them stay connected,
// idle, and then every one of them has a second file opened. It reports
// what an idle session costs the server, from the Go heap and stacks in
// use (runtime.MemStats, after a collection) and from the process's VmRSS,
// each as the growth from before the clients connected divided by their
// number; the clients' own share (a descriptor number each) is in both
// and is small. When this process may not hold a descriptor for both ends
// of every session (RLIMIT_NOFILE), the clients run in a child process
// (TestLoadClients). Run it with -benchtime 1x: one iteration is the whole
// load. No timing is asserted.
func BenchmarkServerSessions(b *testing.B) {
	n := 10000
	if testing.Short() {
		n = 200
	}
	if v := os.Getenv(loadSessionsEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("%s=%q: want a positive count", loadSessionsEnv, v)
		}
	}
	// The server holds a descriptor per session, and so does each client:
	// when this process may not have both, the clients live in a child.
	split := !raiseNoFile(uint64(2*n + 256))
	if split && !raiseNoFile(uint64(n+256)) {
		b.Skipf("cannot raise RLIMIT_NOFILE to %d", n+256)
	}
	dir := b.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		b.Fatal(err)
	}
	pol, err := policy.Parse([]string{file})
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		loadOnce(b, n, dir, file, pol, split)
	}
}

func loadOnce(b *testing.B, n int, dir, file string, pol *policy.Policy, split bool) {
	sock := filepath.Join(dir, "s")
	os.Remove(sock)
	ln, err := ListenSocket(sock, 0o600, -1)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- Serve(ctx, ln.UnixListener, Config{
			Policies:          policy.Unscoped(pol),
			MaxClients:        n + 16,
			MaxSessionsPerUID: n + 16,
			IdleTimeout:       time.Hour,
		})
	}()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			b.Errorf("Serve: %v", err)
		}
	}()

	before := memNow(b)
	var after mem
	if split {
		after = loadInChild(b, n, sock, file)
	} else {
		lc, err := newLoadClients(sock, file)
		if err != nil {
			b.Fatal(err)
		}
		defer lc.close()
		if err := lc.connect(n); err != nil {
			b.Fatal(err)
		}
		// Let the sessions settle into their idle wait.
		time.Sleep(200 * time.Millisecond)
		after = memNow(b)
		if err := lc.again(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n), "sessions")
	b.ReportMetric(float64(after.heap-before.heap)/float64(n), "heap+stack-B/session")
	b.ReportMetric(float64(after.rss-before.rss)/float64(n), "rss-B/session")
}

// loadClients are the clients of BenchmarkServerSessions.
type loadClients struct {
	sock          string
	hello, req    []byte
	buf, oob      []byte
	fds, sessions []int
}

func newLoadClients(sock, file string) (*loadClients, error) {
	hello, err := protocol.AppendHello(nil, &protocol.Hello{Version: protocol.Version})
	if err != nil {
		return nil, err
	}
	req, err := protocol.AppendOpenPath(nil, 1, unix.O_RDONLY, 0, file)
	if err != nil {
		return nil, err
	}
	return &loadClients{sock: sock, hello: hello, req: req, buf: make([]byte, protocol.MaxMessage),
		oob: make([]byte, protocol.OOBSize), fds: make([]int, 0, 4)}, nil
}

// ask sends msg on c and reads the reply, which must be of type want;
// descriptors that came with it are closed.
func (lc *loadClients) ask(c int, msg []byte, want protocol.Type) error {
	if err := protocol.Send(c, msg, nil, 0); err != nil {
		return fmt.Errorf("sending %d bytes: %w", len(msg), err)
	}
	m, err := protocol.Recv(c, lc.buf, lc.oob, lc.fds, 0)
	if err != nil {
		return fmt.Errorf("receiving the reply: %w", err)
	}
	protocol.CloseFDs(m.FDs)
	if m.Type != want {
		return fmt.Errorf("reply of type %v, want %v", m.Type, want)
	}
	return nil
}

// connect makes n sessions, each with its hello answered and one file
// opened.
func (lc *loadClients) connect(n int) error {
	for range n {
		c, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("socket, with %d clients: %w", len(lc.sessions), err)
		}
		lc.sessions = append(lc.sessions, c)
		if err := unix.Connect(c, &unix.SockaddrUnix{Name: lc.sock}); err != nil {
			return fmt.Errorf("connect, with %d clients: %w", len(lc.sessions)-1, err)
		}
		if err := lc.ask(c, lc.hello, protocol.TypeReady); err != nil {
			return fmt.Errorf("session %d: hello: %w", len(lc.sessions), err)
		}
		if err := lc.ask(c, lc.req, protocol.TypeOpened); err != nil {
			return fmt.Errorf("session %d: first open: %w", len(lc.sessions), err)
		}
	}
	return nil
}

// again has every session, idle until now, open the file once more.
func (lc *loadClients) again() error {
	for i, c := range lc.sessions {
		if err := lc.ask(c, lc.req, protocol.TypeOpened); err != nil {
			return fmt.Errorf("session %d of %d: open after idling: %w", i+1, len(lc.sessions), err)
		}
	}
	return nil
}

func (lc *loadClients) close() {
	for _, c := range lc.sessions {
		unix.Close(c)
	}
}

// loadChildEnv, set to "SOCKET FILE N", makes TestLoadClients the clients
// of a BenchmarkServerSessions in another process: it connects N sessions,
// prints "connected", waits for a line on its standard input, has every
// session open the file again, prints "served" and exits.
const loadChildEnv = "PRIVSEP_LOAD_CLIENTS"

func TestLoadClients(t *testing.T) {
	v := os.Getenv(loadChildEnv)
	if v == "" {
		t.Skip("the clients of BenchmarkServerSessions, when it runs them in a child process")
	}
	f := strings.Fields(v)
	n, err := strconv.Atoi(f[2])
	if len(f) != 3 || err != nil {
		t.Fatalf("%s=%q: want SOCKET FILE N", loadChildEnv, v)
	}
	if !raiseNoFile(uint64(n + 256)) {
		t.Fatalf("cannot raise RLIMIT_NOFILE to %d", n+256)
	}
	lc, err := newLoadClients(f[0], f[1])
	if err != nil {
		t.Fatal(err)
	}
	defer lc.close()
	if err := lc.connect(n); err != nil {
		t.Fatal(err)
	}
	fmt.Println("connected")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if err := lc.again(); err != nil {
		t.Fatal(err)
	}
	fmt.Println("served")
}

// loadInChild runs the clients in a child process (TestLoadClients) and
// returns the reading of this process's memory taken while they are idle.
func loadInChild(b *testing.B, n int, sock, file string) mem {
	b.Helper()
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run", "^TestLoadClients$", "-test.v")
	cmd.Env = append(os.Environ(), loadChildEnv+"="+sock+" "+file+" "+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	expect := func(word string) {
		b.Helper()
		var seen []string
		for lines.Scan() {
			if lines.Text() == word {
				return
			}
			seen = append(seen, lines.Text())
		}
		cmd.Process.Kill()
		cmd.Wait()
		b.Fatalf("the clients' process did not say %q: %s", word, strings.Join(seen, "\n"))
	}
	expect("connected")
	time.Sleep(200 * time.Millisecond)
	after := memNow(b)
	fmt.Fprintln(in, "go")
	expect("served")
	in.Close()
	if err := cmd.Wait(); err != nil {
		b.Fatalf("the clients' process: %v", err)
	}
	return after
}

// mem is a reading of the process's memory.
type mem struct{ heap, rss int64 }

func memNow(b *testing.B) mem {
	b.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	var rss int64
	for _, l := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatalf("VmRSS %q: %v", v, err)
			}
			rss = kb << 10
		}
	}
	return mem{heap: int64(ms.HeapInuse + ms.StackInuse), rss: rss}
}

// raiseNoFile raises this process's descriptor limit to at least want
// (the hard limit too, where we may), and reports whether it is now.
func raiseNoFile(want uint64) bool {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return false
	}
	if lim.Cur >= want {
		return true
	}
	lim.Cur = want
	if lim.Max < want {
		lim.Max = want // with CAP_SYS_RESOURCE
	}
	return unix.Setrlimit(unix.RLIMIT_NOFILE, &lim) == nil
}
