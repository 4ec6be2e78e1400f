//go:build linux

package parent

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/protocol"
)

// errSocketClosed is what a use of the socket after Close gets. It matches
// ErrClosed and, as net's errors after Close do, os.ErrClosed.
var errSocketClosed = fmt.Errorf("%w: %w", ErrClosed, os.ErrClosed)

// cancelPoll is how often a goroutine blocked on the socket for a context
// that can be cancelled but has no deadline looks at it again. Deadlines are
// waited for exactly.
const cancelPoll = 10 * time.Millisecond

// sockClosing is the bit of sock.refs that close sets. The count of
// references held lives in the bits below it.
const sockClosing = 1 << 62

// sock is the parent's one reference to the socket connected to the opener.
// Every use of the descriptor number (sends, receives, deadlines, shutdown,
// the duplicate that File hands out) holds a reference while it runs; close
// marks the socket closed, so that every later use fails with
// errSocketClosed, waits until the references still held are released,
// and only then closes the descriptor. So a number cannot be closed under
// one of its users, and no user can reach a number the kernel has since
// given to another file.
//
// The count is atomic rather than a mutex so that callers sending at once
// do not queue on it, and it allocates nothing. syscall.RawConn.Control
// would guard the number the same way, but its closure escapes: an
// allocation per send on the hot path.
type sock struct {
	fd      int
	file    *os.File        // owns fd and its registration with the runtime's poller
	rc      syscall.RawConn // file's: receives wait through the poller
	refs    atomic.Int64    // references held, plus sockClosing once close has begun
	drained chan struct{}   // capacity 1: refs fell to sockClosing
}

// newSock takes ownership of fd, a connected SOCK_SEQPACKET socket; it
// closes fd if it fails.
func newSock(fd int) (*sock, error) {
	// Replies are waited for through the runtime's poller: a goroutine
	// blocked in recvmsg would hold a thread in a system call, which the
	// runtime's monitor wakes every 20 µs to take its scheduler slot back.
	// Sends and receives themselves are raw and non-blocking.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	file := os.NewFile(uintptr(fd), "privsep-opener-socket")
	rc, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, err
	}
	return &sock{fd: fd, file: file, rc: rc, drained: make(chan struct{}, 1)}, nil
}

// acquire takes a reference, unless close has begun. A true return must be
// matched by release.
func (s *sock) acquire() bool {
	// Counting first and checking after keeps this one atomic add; a
	// reference taken too late is given straight back.
	if s.refs.Add(1)&sockClosing != 0 {
		s.release()
		return false
	}
	return true
}

// release gives a reference back. Once close has begun, each time the count
// reaches zero the references close waits for are all gone (later acquires
// only pass through), so any of those moments may wake it.
func (s *sock) release() {
	if s.refs.Add(-1) == sockClosing {
		select {
		case s.drained <- struct{}{}:
		default:
		}
	}
}

// close marks the socket closed, wakes a receive waiting in the poller,
// waits for every reference held to be released and closes the
// descriptor. Uses that are blocked in the kernel must end on their own
// (the caller makes sure the connection is over: the opener has exited or
// the socket was shut down). Only the first call closes; later ones return
// errSocketClosed.
func (s *sock) close() error {
	old := s.refs.Or(sockClosing)
	if old&sockClosing != 0 {
		return errSocketClosed
	}
	if old != 0 {
		// The file's own guard makes this safe while receives run.
		s.file.SetReadDeadline(longAgo)
		<-s.drained
	}
	return s.file.Close()
}

// trySend sends msg once, without waiting: unix.EAGAIN if the opener's
// queue is full.
func (s *sock) trySend(msg []byte) error {
	if !s.acquire() {
		return errSocketClosed
	}
	err := protocol.Send(s.fd, msg, nil, unix.MSG_DONTWAIT)
	s.release()
	return err
}

// send sends msg, waiting for room in the opener's queue (it holds only a
// few messages) without ignoring ctx.
func (s *sock) send(ctx context.Context, msg []byte) error {
	if !s.acquire() {
		return errSocketClosed
	}
	defer s.release()
	for {
		err := protocol.Send(s.fd, msg, nil, unix.MSG_DONTWAIT)
		if err != unix.EAGAIN {
			return err
		}
		if err := s.pollWait(ctx, unix.POLLOUT); err != nil {
			return err
		}
	}
}

// pollWait waits until the socket is ready for events or ctx is done. The
// caller holds a reference. Readiness includes hang-up and errors, which
// the next call reports.
//
// Writers wait here, each on its own, rather than in the runtime's poller:
// the poller's deadline is one per descriptor, and one caller's context
// must not cut short another's send.
func (s *sock) pollWait(ctx context.Context, events int16) error {
	pfd := []unix.PollFd{{Fd: int32(s.fd), Events: events}}
	for {
		var ts *unix.Timespec
		if ctx.Done() != nil {
			wait := cancelPoll
			if d, ok := ctx.Deadline(); ok {
				if left := time.Until(d); left < wait {
					wait = left
				}
			}
			if wait <= 0 {
				return ctx.Err()
			}
			t := unix.NsecToTimespec(int64(wait))
			ts = &t
		}
		n, err := unix.Ppoll(pfd, ts, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("ppoll", err)
		}
		if n > 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
			return context.DeadlineExceeded
		}
	}
}

// read calls fn with the descriptor until it returns true, waiting through
// the poller for the socket to be readable in between (see
// syscall.RawConn.Read). A deadline set with setReadDeadline ends the wait
// with os.ErrDeadlineExceeded.
func (s *sock) read(fn func(uintptr) bool) error {
	if !s.acquire() {
		return errSocketClosed
	}
	err := s.rc.Read(fn)
	s.release()
	return err
}

// setReadDeadline sets the poller's deadline for read; a time in the past
// wakes a read that is waiting.
func (s *sock) setReadDeadline(t time.Time) {
	if !s.acquire() {
		return // nobody can be reading
	}
	s.file.SetReadDeadline(t)
	s.release()
}

// shutdown shuts the socket down (unix.SHUT_WR, unix.SHUT_RDWR).
func (s *sock) shutdown(how int) error {
	if !s.acquire() {
		return errSocketClosed
	}
	err := unix.Shutdown(s.fd, how)
	s.release()
	if err != nil {
		return os.NewSyscallError("shutdown", err)
	}
	return nil
}

// dup returns a duplicate of the socket, close-on-exec; the caller owns
// the File and its descriptor, the sock keeps its own.
func (s *sock) dup() (*os.File, error) {
	if !s.acquire() {
		return nil, errSocketClosed
	}
	fd, err := unix.FcntlInt(uintptr(s.fd), unix.F_DUPFD_CLOEXEC, 0)
	s.release()
	if err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	return os.NewFile(uintptr(fd), "privsep-opener-socket"), nil
}
