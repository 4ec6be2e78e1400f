//go:build linux

package parent

// Tests of the socket's one guarded reference (sock.go), from inside the
// package: they need the descriptor number and the reference count, which
// the API does not show.

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/protocol"
)

// testMsg is a well-formed message (a hello) to send on a test socket.
func testMsg(t *testing.T) []byte {
	t.Helper()
	m, err := protocol.AppendHello(nil, &protocol.Hello{Version: protocol.Version})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// newTestSock returns a sock on one end of a socketpair and the other end.
func newTestSock(t *testing.T) (*sock, int) {
	t.Helper()
	a, b, err := protocol.Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(b) })
	s, err := newSock(a)
	if err != nil {
		t.Fatal(err)
	}
	return s, b
}

// takeNumber makes sockets until one gets descriptor number fd, which was
// just freed, and returns it with its peer; the rest are closed.
func takeNumber(t *testing.T, fd int) (int, int) {
	t.Helper()
	var spare []int
	defer func() {
		for _, x := range spare {
			unix.Close(x)
		}
	}()
	for i := 0; i < 64; i++ {
		a, b, err := protocol.Socketpair()
		if err != nil {
			t.Fatal(err)
		}
		switch fd {
		case a:
			t.Cleanup(func() { unix.Close(a); unix.Close(b) })
			return a, b
		case b:
			t.Cleanup(func() { unix.Close(a); unix.Close(b) })
			return b, a
		}
		spare = append(spare, a, b)
	}
	t.Fatalf("descriptor %d was not reused by 128 new ones", fd)
	return -1, -1
}

func wantClosed(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, os.ErrClosed) || !errors.Is(err, ErrClosed) {
		t.Errorf("%s after close: %v, want an error matching os.ErrClosed and ErrClosed", what, err)
	}
}

// TestSockUseAfterClose performs the attack of the socket's second owner:
// after close, the kernel gives the number to a new socket, and a use by
// number (a duplicate for File, a flush's send, a shutdown) would reach it.
// Every use must fail instead, and the new socket see nothing.
func TestSockUseAfterClose(t *testing.T) {
	s, _ := newTestSock(t)
	old := s.fd
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	reused, peer := takeNumber(t, old)
	msg := testMsg(t)

	f, err := s.dup()
	if f != nil {
		f.Close()
		t.Errorf("dup after close returned %s", f.Name())
	}
	wantClosed(t, "dup", err)
	wantClosed(t, "trySend", s.trySend(msg))
	wantClosed(t, "send", s.send(context.Background(), msg))
	wantClosed(t, "shutdown", s.shutdown(unix.SHUT_RDWR))
	_, err = s.recv(context.Background(), make([]byte, protocol.MaxMessage), make([]byte, protocol.OOBSize), nil)
	wantClosed(t, "recv", err)
	wantClosed(t, "a second close", s.close())

	// The new owner of the number got nothing and still works.
	buf := make([]byte, protocol.MaxMessage)
	if n, _, _, _, err := unix.Recvmsg(peer, buf, nil, unix.MSG_DONTWAIT); err != unix.EAGAIN {
		t.Errorf("the socket that reused descriptor %d received %d bytes (%v): a use after close reached it", old, n, err)
	}
	if err := protocol.Send(reused, msg, nil, unix.MSG_DONTWAIT); err != nil {
		t.Errorf("the socket that reused descriptor %d was shut down or closed: %v", old, err)
	}
	// What the guard prevents: a send by the old number lands there.
	if n, _, _, _, err := unix.Recvmsg(peer, buf, nil, unix.MSG_DONTWAIT); err != nil || n != len(msg) {
		t.Fatalf("test setup: the message sent on the new socket did not arrive (%d, %v)", n, err)
	}
}

// waitRefs waits until s's count (without the closing bit) is n.
func waitRefs(t *testing.T, s *sock, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.refs.Load()&^sockClosing != n {
		if time.Now().After(deadline) {
			t.Fatalf("references stayed at %d, want %d", s.refs.Load()&^sockClosing, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// closeHeld starts closing s while a use (what: "send") holds a
// reference to it, waits until close has begun, fails t if close returns
// while that use still holds it, and returns close's result to come.
func closeHeld(t *testing.T, s *sock, what string) <-chan error {
	t.Helper()
	closed := make(chan error, 1)
	go func() { closed <- s.close() }()
	for s.refs.Load()&sockClosing == 0 {
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-closed:
		t.Fatalf("close returned (%v) while a %s held the socket", err, what)
	case <-time.After(20 * time.Millisecond):
	}
	return closed
}

// TestSockCloseWaitsForSend closes the socket while a send is waiting for
// room: close must not close the number under it, and the send must end
// on the socket it started on.
func TestSockCloseWaitsForSend(t *testing.T) {
	s, peer := newTestSock(t)
	msg := testMsg(t)
	queued := 0
	for {
		err := s.trySend(msg)
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		queued++
	}
	sent := make(chan error, 1)
	go func() { sent <- s.send(context.Background(), msg) }()
	waitRefs(t, s, 1)
	closed := closeHeld(t, s, "send")
	// Make room (a waiting sender is woken once the queue is down to a
	// quarter): the waiting send goes out on the socket it started on, and
	// the peer receives every message, that one last.
	buf := make([]byte, protocol.MaxMessage)
	for i := 0; i <= queued; i++ {
		if _, _, _, _, err := unix.Recvmsg(peer, buf, nil, 0); err != nil {
			t.Fatalf("message %d of %d: %v", i+1, queued+1, err)
		}
	}
	if err := <-sent; err != nil {
		t.Errorf("the send waiting for room: %v", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("close: %v", err)
	}
	if n, _, _, _, err := unix.Recvmsg(peer, buf, nil, unix.MSG_DONTWAIT); err != nil || n != 0 {
		t.Errorf("after close the peer read %d bytes (%v), want end of stream", n, err)
	}
}

// TestSockShutdownWakesRecv blocks a receive on a socket with nothing to
// come, as a reader waits for an opener that exited while something it
// left behind holds its end: close must wait for it, not close the number
// under it, and the backend's shutdown must wake it with end of stream.
// Both kinds of wait: in recvmsg (a context that cannot end) and in ppoll.
func TestSockShutdownWakesRecv(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  context.Context
	}{
		{"blocking", context.Background()},
		{"cancellable", t.Context()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestSock(t)
			read := make(chan error, 1)
			go func() {
				_, err := s.recv(tc.ctx, make([]byte, protocol.MaxMessage), make([]byte, protocol.OOBSize), nil)
				read <- err
			}()
			waitRefs(t, s, 1)
			closed := closeHeld(t, s, "receive")
			// close has begun, so shutdown by number is refused; the
			// backends shut down before they close. Do it as they do,
			// under the receive's reference.
			if err := unix.Shutdown(s.fd, unix.SHUT_RDWR); err != nil {
				t.Fatal(err)
			}
			if err := <-read; err != io.EOF {
				t.Errorf("the woken receive returned %v, want io.EOF", err)
			}
			if err := <-closed; err != nil {
				t.Errorf("close: %v", err)
			}
		})
	}
}

// TestSockRecvCancel ends the context of a receive waiting with nothing to
// come: it returns the context's error at once rather than wait for a
// message, and leaves the socket usable.
func TestSockRecvCancel(t *testing.T) {
	s, peer := newTestSock(t)
	ctx, cancel := context.WithCancel(context.Background())
	read := make(chan error, 1)
	buf, oob := make([]byte, protocol.MaxMessage), make([]byte, protocol.OOBSize)
	go func() {
		_, err := s.recv(ctx, buf, oob, nil)
		read <- err
	}()
	waitRefs(t, s, 1)
	cancel()
	if err := <-read; err != context.Canceled {
		t.Errorf("the cancelled receive returned %v, want context.Canceled", err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer dcancel()
	if _, err := s.recv(dctx, buf, oob, nil); err != context.DeadlineExceeded {
		t.Errorf("a receive past its deadline returned %v, want context.DeadlineExceeded", err)
	}
	msg := testMsg(t)
	if err := protocol.Send(peer, msg, nil, 0); err != nil {
		t.Fatal(err)
	}
	m, err := s.recv(context.Background(), buf, oob, nil)
	if err != nil || m.Type != protocol.TypeHello {
		t.Errorf("after the cancelled receives: %v, %v; want the hello", m.Type, err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
}

// TestSockConcurrentClose races uses of every kind with close, under the
// race detector: each use either works on the socket or fails with
// errSocketClosed, a duplicate is always of the socket, and no descriptor
// leaks.
func TestSockConcurrentClose(t *testing.T) {
	msg := testMsg(t)
	fds0, err := testutil.CountFDs(0)
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 200; round++ {
		a, peer, err := protocol.Socketpair()
		if err != nil {
			t.Fatal(err)
		}
		s, err := newSock(a)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var bad []error
		note := func(err error) {
			if err != nil && err != unix.EAGAIN && !errors.Is(err, os.ErrClosed) {
				mu.Lock()
				bad = append(bad, err)
				mu.Unlock()
			}
		}
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 20; i++ {
					note(s.trySend(msg))
					f, err := s.dup()
					note(err)
					if f != nil {
						if typ, err := unix.GetsockoptInt(int(f.Fd()), unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_SEQPACKET {
							note(errors.New("dup returned something other than the socket"))
						}
						f.Close()
					}
				}
			}()
		}
		note(s.close())
		wg.Wait()
		for _, err := range bad {
			t.Fatalf("round %d: %v", round, err)
		}
		unix.Close(peer)
	}
	if fds1, err := testutil.CountFDs(0); err != nil || fds1 != fds0 {
		t.Errorf("descriptors %d→%d (%v)", fds0, fds1, err)
	}
}
