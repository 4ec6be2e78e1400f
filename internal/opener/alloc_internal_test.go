//go:build linux

package opener

import (
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/policy"
	"github.com/privsep-go/privsep/protocol"
)

// treeRuleset builds the ruleset of one tree rule for dir, on a directory
// table the caller closes.
func treeRuleset(t *testing.T, dir string) (*DirTable, *Ruleset) {
	t.Helper()
	pol, err := policy.Parse([]string{dir + "/"})
	if err != nil {
		t.Fatal(err)
	}
	root, err := PinRoot()
	if err != nil {
		t.Fatal(err)
	}
	dirs := NewDirTable(root, HaveOpenat2(root))
	rs, err := NewRuleset(hclog.NewNullLogger(), pol, dirs)
	unix.Close(root)
	if err != nil {
		dirs.Close()
		t.Fatal(err)
	}
	return dirs, rs
}

// servedSession serves a tree rule for dir on one worker in this process,
// and returns the client's end of the socket and a function that ends the
// session and waits for it.
func servedSession(t *testing.T, dir string) (mine int, stop func()) {
	t.Helper()
	dirs, rs := treeRuleset(t, dir)
	mine, theirs, err := protocol.Socketpair()
	if err != nil {
		dirs.Close()
		t.Fatal(err)
	}
	c, err := newConn(theirs)
	if err != nil {
		unix.Close(mine)
		dirs.Close()
		t.Fatal(err)
	}
	s := &Session{log: hclog.NewNullLogger(), conn: c, end: func(int) {}, dirs: dirs, rs: rs}
	done := make(chan int)
	go func() { done <- s.run(1) }()
	return mine, func() {
		unix.Shutdown(mine, unix.SHUT_WR)
		<-done
		c.close()
		s.dirs.Close()
		unix.Close(mine)
	}
}

// steadyStateAllocs sends req over mine, warms the server up (the worker's
// timer, the poller, its buffers), and returns the allocations per round
// trip once it is warm. Every reply must be of type want; the descriptors
// it carries are closed.
func steadyStateAllocs(t *testing.T, mine int, req []byte, want protocol.Type) float64 {
	t.Helper()
	buf, oob, fds := make([]byte, protocol.MaxMessage), make([]byte, protocol.OOBSize), make([]int, 0, 4)
	roundTrip := func() {
		if err := protocol.Send(mine, req, nil, 0); err != nil {
			t.Fatal(err)
		}
		m, err := protocol.Recv(mine, buf, oob, fds, 0)
		if err != nil || m.Type != want {
			t.Fatalf("reply: %v %v, want %v", m.Type, err, want)
		}
		protocol.CloseFDs(m.FDs)
	}
	for i := 0; i < 100; i++ {
		roundTrip()
	}
	return testing.AllocsPerRun(1000, roundTrip)
}

// TestWorkerSteadyStateAllocs serves requests in this process, over a
// socket pair, and counts the allocations per request: the opener's steady
// state must allocate nothing beyond the descriptor it opens (which is the
// kernel's, not the heap's). The client side uses the protocol package's
// raw calls, which do not allocate either.
func TestWorkerSteadyStateAllocs(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	mine, stop := servedSession(t, dir)
	defer stop()

	req, err := protocol.AppendOpenPath(nil, 1, unix.O_RDONLY, 0, file)
	if err != nil {
		t.Fatal(err)
	}
	if n := steadyStateAllocs(t, mine, req, protocol.TypeOpened); n != 0 {
		t.Errorf("got %v allocations per request in the steady state, want 0", n)
	}
}

// TestReadDirSteadyStateAllocs: a listing, once the worker has made its
// getdents buffer and grown its reply buffer, allocates nothing either.
func TestReadDirSteadyStateAllocs(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a", "b", "c"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mine, stop := servedSession(t, dir)
	defer stop()

	req, err := protocol.AppendReadDir(nil, 1, 0, dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := steadyStateAllocs(t, mine, req, protocol.TypeDirList); n != 0 {
		t.Errorf("got %v allocations per listing in the steady state, want 0", n)
	}
}

// TestPooledSessionSteadyStateAllocs: a server's session, whose workers
// wait through the poller and borrow their buffers from a pool for each
// request, allocates nothing per request either, and the pool makes only
// the sets that are in use at once.
func TestPooledSessionSteadyStateAllocs(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	mine, theirs, err := protocol.Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(mine)
	f := os.NewFile(uintptr(theirs), "server-end")
	fc, err := net.FileConn(f) // dups the descriptor, non-blocking, on the poller
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	uc := fc.(*net.UnixConn)
	rc, err := uc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	rc.Control(func(x uintptr) { fd = int(x) })
	dirs, rs := treeRuleset(t, dir)
	defer dirs.Close()
	made := 0
	pool := &BufferPool{p: sync.Pool{New: func() any { made++; return newBufSet() }}}
	s := NewSession(hclog.NewNullLogger(), ConnOf(fd, rc, nil), rs, func(int) {}, nil)
	s.ShareBuffers(pool)
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops buffer sets on purpose")
	}
	done := make(chan int)
	go func() { done <- s.Run(2) }()

	req, err := protocol.AppendOpenPath(nil, 1, unix.O_RDONLY, 0, file)
	if err != nil {
		t.Fatal(err)
	}
	if n := steadyStateAllocs(t, mine, req, protocol.TypeOpened); n != 0 {
		t.Errorf("got %v allocations per request in the steady state, want 0", n)
	}
	unix.Shutdown(mine, unix.SHUT_WR)
	<-done
	// One request at a time needs one set; a collection may empty the
	// pool (sync.Pool) and cost one more now and then.
	if made > 3 {
		t.Errorf("the pool made %d buffer sets for requests served one at a time", made)
	}
}
