//go:build linux

package parent_test

// Faults of the socket's ownership: File after and during Close, and Close
// while the coalescing flush is sending. Before the socket had one guarded
// reference (sock.go), File duplicated the number with no closed check and
// a flush could send on it after Close had closed it: both reached
// whatever file the kernel had given the number to since.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/hostile"
	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/parent"
	"github.com/privsep-go/privsep/protocol"
)

// isOpenerSocket reports whether f is a SOCK_SEQPACKET socket, as the
// opener's is; a number reused after Close would most likely not be.
func isOpenerSocket(f *os.File) bool {
	typ, err := unix.GetsockoptInt(int(f.Fd()), unix.SOL_SOCKET, unix.SO_TYPE)
	return err == nil && typ == unix.SOCK_SEQPACKET
}

// describeFD says what a descriptor is: "socket", "/dev/null".
func describeFD(f *os.File) string {
	if isOpenerSocket(f) {
		return "the opener's socket"
	}
	l, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil {
		return err.Error()
	}
	return l
}

// TestFaultFileAfterClose performs the attack of a caller that asks for
// the socket after Close, once the kernel has given its number to another
// file: File must fail, not hand out a duplicate of that file. A second
// part calls File from several goroutines while Close runs and files are
// being opened: every File that succeeds returns the opener's socket.
func TestFaultFileAfterClose(t *testing.T) {
	root, _ := tree(t)
	g0, fds0 := runtime.NumGoroutine(), testutil.FDs(t, 0)
	o, err := parent.Start(context.Background(), parent.Config{Rules: []string{root + "/"}})
	testutil.Must(t, err)
	testutil.Must(t, o.Close())
	// Take every number Close freed (and more): one of them is the
	// socket's.
	var nulls []*os.File
	for i := 0; i < 64; i++ {
		f, err := os.Open(os.DevNull)
		testutil.Must(t, err)
		nulls = append(nulls, f)
	}
	f, ferr := o.File()
	got := "no file"
	if f != nil {
		got = "a duplicate of " + describeFD(f)
		f.Close()
	}
	for _, n := range nulls {
		n.Close()
	}
	matches := errors.Is(ferr, os.ErrClosed) && errors.Is(ferr, parent.ErrClosed)
	if f != nil || !matches {
		t.Errorf("File after Close: %s, %v; want no file and an error matching os.ErrClosed and ErrClosed", got, ferr)
	}

	// File racing Close, with other goroutines opening files all along.
	rounds, callers := 30, 4
	if hostile.Race {
		rounds, callers = 8, 2
	}
	wrong, dups, refused, other := 0, 0, 0, 0
	var otherErr error
	for r := 0; r < rounds; r++ {
		o, err := parent.Start(context.Background(), parent.Config{Rules: []string{root + "/"}})
		testutil.Must(t, err)
		var wg sync.WaitGroup
		var mu sync.Mutex
		stop := make(chan struct{})
		for g := 0; g < callers; g++ {
			wg.Add(2)
			go func() { // File until it fails
				defer wg.Done()
				for {
					f, err := o.File()
					mu.Lock()
					switch {
					case err == nil && isOpenerSocket(f):
						dups++
					case err == nil:
						wrong++
					case errors.Is(err, os.ErrClosed):
						refused++
					default:
						other++
						otherErr = err
					}
					mu.Unlock()
					if err != nil {
						return
					}
					f.Close()
				}
			}()
			go func() { // reuse numbers as soon as they are freed
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if f, err := os.Open(os.DevNull); err == nil {
						f.Close()
					}
				}
			}()
		}
		time.Sleep(2 * time.Millisecond)
		testutil.Must(t, o.Close())
		close(stop)
		wg.Wait()
	}
	g1, fds1 := settleGoroutines(g0), settleSelfFDs(t, fds0)
	hostile.Row(t, secLifecycle, fmt.Sprintf("File after Close with the number reused; File from %d goroutines racing Close while others open files (%d rounds)", callers, rounds),
		"File after Close fails with an error matching ErrClosed and os.ErrClosed; a File that succeeds is always the opener's socket; nothing kept",
		fmt.Sprintf("after Close: %s, %v; racing: %d duplicates of the socket, %d of another file, %d refused with os.ErrClosed, %d other errors; goroutines %d→%d; fds %d→%d",
			got, ferr, dups, wrong, refused, other, g0, g1, fds0, fds1))
	if wrong > 0 {
		t.Errorf("%d Files racing Close returned a duplicate of a file that is not the opener's socket", wrong)
	}
	if other > 0 {
		t.Errorf("%d Files racing Close failed with something other than os.ErrClosed, such as %v", other, otherErr)
	}
	noneKept(t, fds0, fds1, g0, g1)
}

// longTree makes a file whose path is about 3000 bytes long, so that a
// few dozen opens of it fill the socket's send buffer, and returns the
// rule's directory and the path.
func longTree(t *testing.T) (string, string) {
	t.Helper()
	root := t.TempDir()
	dir := root
	for len(dir) < 2900 {
		dir = filepath.Join(dir, strings.Repeat("d", 200))
	}
	testutil.Must(t, os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, "f")
	testutil.Must(t, os.WriteFile(path, []byte("f"), 0o644))
	return root, path
}

// outq returns how many bytes wait in the socket's send queue, read from a
// duplicate of it.
func outq(o *parent.Opener) int {
	f, err := o.File()
	if err != nil {
		return -1
	}
	defer f.Close()
	n, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCOUTQ)
	if err != nil {
		return -1
	}
	return n
}

// grabOpenerEnd takes a duplicate of the opener's end of the socket with
// pidfd_getfd(2), as something the opener left behind would hold it: then
// the parent sees no hang-up when the opener dies.
func grabOpenerEnd(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	testutil.Must(t, err)
	pidfd, err := unix.PidfdOpen(pid, 0)
	testutil.Must(t, err)
	defer unix.Close(pidfd)
	for _, e := range ents {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
		if err != nil || !strings.HasPrefix(l, "socket:") {
			continue
		}
		var n int
		fmt.Sscan(e.Name(), &n)
		fd, err := unix.PidfdGetfd(pidfd, n, 0)
		if err != nil {
			t.Skipf("pidfd_getfd: %v", err)
		}
		return fd
	}
	t.Fatalf("the opener (pid %d) has no socket", pid)
	return -1
}

// TestFaultCloseDuringFlush closes the Opener while coalescing flushes are
// sending. The opener is stopped; batches of long paths nearly fill the
// socket's buffer; then single opens arrive one by one, so that the flush
// timer sends each on its own until one gets EAGAIN and leaves a goroutine
// waiting for room. Close runs while the opener is let go on (SIGCONT), is
// killed, or is killed while another process holds its end of the socket
// (taken with pidfd_getfd, as a process the opener left behind would hold
// it), so that the parent sees no hang-up; that process reads what is
// queued after Close has returned, which lets a waiting flush go on. Close
// must wait for the flushes: nothing may be sent on the number once Close
// has returned (sockets made right after Close take the freed numbers and
// must receive nothing), every call ends with its files, ErrClosed or the
// opener's *ExitError, and no goroutine or descriptor is left.
func TestFaultCloseDuringFlush(t *testing.T) {
	root, path := longTree(t)
	rounds := 12
	if testing.Short() {
		rounds = 6
	}
	const callers, batches = 32, 3
	// One batch: as many of the long paths as fit in one message.
	var batch []parent.Request
	for size := protocol.BatchSize(0, 0); size+protocol.BatchSize(1, len(path))-protocol.BatchSize(0, 0) <= protocol.MaxMessage; size += protocol.BatchSize(1, len(path)) - protocol.BatchSize(0, 0) {
		batch = append(batch, parent.Request{Path: path})
	}
	g0, fds0 := runtime.NumGoroutine(), testutil.FDs(t, 0)
	var files, closed, exited, received, other int
	var otherErr error
	maxQ := 0
	for r := 0; r < rounds; r++ {
		mode := []string{"SIGCONT", "SIGKILL", "SIGKILL, end held"}[r%3]
		o, err := parent.Start(context.Background(), parent.Config{Rules: []string{root + "/"}})
		testutil.Must(t, err)
		pid := o.PID()
		held := -1
		if mode == "SIGKILL, end held" {
			held = grabOpenerEnd(t, pid)
		}
		testutil.Must(t, hostile.Stop(pid, 5*time.Second))
		errs := make(chan error, callers+batches)
		for b := 0; b < batches; b++ {
			go func() {
				res, err := o.OpenBatch(context.Background(), batch)
				for _, r := range res {
					if r.File != nil {
						r.File.Close()
					}
				}
				errs <- err
			}()
		}
		for g := 0; g < callers; g++ {
			go func() {
				f, err := o.Open(context.Background(), path, os.O_RDONLY, 0)
				if f != nil {
					f.Close()
				}
				errs <- err
			}()
			// Past flushDelay: each open goes out in a flush of its own.
			time.Sleep(2 * time.Millisecond)
		}
		// Until the queue stops growing: the buffer is full, or every
		// call has gone out.
		q, last := 0, -1
		for q != last {
			last = q
			time.Sleep(20 * time.Millisecond)
			q = outq(o)
		}
		maxQ = max(maxQ, q)
		closeErr := make(chan error, 1)
		go func() { closeErr <- o.Close() }()
		kill := mode != "SIGCONT"
		if kill {
			testutil.Must(t, syscall.Kill(pid, syscall.SIGKILL))
		} else {
			testutil.Must(t, syscall.Kill(pid, syscall.SIGCONT))
		}
		cerr := <-closeErr
		// Take the numbers Close freed, at once.
		var peers [][2]int
		for i := 0; i < 8; i++ {
			a, b, err := protocol.Socketpair()
			testutil.Must(t, err)
			peers = append(peers, [2]int{a, b})
		}
		var ee *parent.ExitError
		if cerr != nil && !(kill && errors.As(cerr, &ee)) {
			t.Errorf("round %d: Close: %v", r, cerr)
		}
		for g := 0; g < callers+batches; g++ {
			err := <-errs
			var pe *fs.PathError
			switch {
			case err == nil:
				files++
			case err == parent.ErrClosed:
				closed++
			case errors.As(err, &ee):
				exited++
			case errors.As(err, &pe) && (errors.Is(err, parent.ErrClosed) || errors.As(err, &ee)):
				closed++
			default:
				other++
				otherErr = err
			}
		}
		buf := make([]byte, protocol.MaxMessage)
		if held >= 0 {
			// Make room: a flush still waiting would now send.
			for {
				if n, _, _, _, err := unix.Recvmsg(held, buf, nil, unix.MSG_DONTWAIT); err != nil || n == 0 {
					break
				}
			}
			time.Sleep(50 * time.Millisecond)
			unix.Close(held)
		}
		for _, p := range peers {
			for _, fd := range p {
				if n, _, _, _, err := unix.Recvmsg(fd, buf, nil, unix.MSG_DONTWAIT); err == nil && n > 0 {
					received++
				}
			}
			unix.Close(p[0])
			unix.Close(p[1])
		}
	}
	g1, fds1 := settleGoroutines(g0), settleSelfFDs(t, fds0)
	hostile.Row(t, secLifecycle, fmt.Sprintf("Close while coalescing flushes wait for room: opener stopped, %d batches of 3 KB paths fill the socket, %d single opens flushed one by one, then Close with SIGCONT, SIGKILL, or SIGKILL while another process holds the opener's end (%d rounds)", batches, callers, rounds),
		"Close waits for the flush; nothing is sent on the number after Close; each call gets its file, ErrClosed or the *ExitError; nothing kept",
		fmt.Sprintf("send queue up to %d bytes; calls: %d files, %d ErrClosed, %d *ExitError, %d other; sockets that took the freed numbers received %d messages; goroutines %d→%d; fds %d→%d",
			maxQ, files, closed, exited, other, received, g0, g1, fds0, fds1))
	if received > 0 {
		t.Errorf("%d sockets made after Close received a message sent on the old number", received)
	}
	if other > 0 {
		t.Errorf("%d calls ended otherwise, such as %v", other, otherErr)
	}
	noneKept(t, fds0, fds1, g0, g1)
}
