//go:build linux

package parent

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
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
// Every use of the descriptor number (sends, receives, shutdown, the
// duplicate that File hands out) holds a reference while it runs; close
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
//
// The socket is not in the runtime's poller. Registered there (edge
// triggered, for reading and writing), every message either way woke the
// poller's thread, three or four epoll_pwait calls per open on top of the
// reader's own park and wake-up; a receive waits in the kernel instead
// (recv).
type sock struct {
	fd      int
	file    *os.File      // owns fd; blocking, so NewFile leaves it out of the poller
	refs    atomic.Int64  // references held, plus sockClosing once close has begun
	drained chan struct{} // capacity 1: refs fell to sockClosing
}

// newSock takes ownership of fd, a connected SOCK_SEQPACKET socket; it
// closes fd if it fails.
func newSock(fd int) (*sock, error) {
	// Blocking mode is for receives (recv); sends pass MSG_DONTWAIT. It
	// also keeps os.NewFile from registering the descriptor with the
	// runtime's poller.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	file := os.NewFile(uintptr(fd), "privsep-opener-socket")
	return &sock{fd: fd, file: file, drained: make(chan struct{}, 1)}, nil
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

// close marks the socket closed, waits for every reference held to be
// released and closes the descriptor. Uses that are blocked in the kernel
// (a receive, a send waiting for room) must end on their own: the caller
// makes sure the connection is over (the opener has exited, or the socket
// was shut down, which wakes them). Only the first call closes; later ones
// return errSocketClosed.
func (s *sock) close() error {
	old := s.refs.Or(sockClosing)
	if old&sockClosing != 0 {
		return errSocketClosed
	}
	if old != 0 {
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
// Writers wait here, each on its own (a deadline in the runtime's poller
// would be one per descriptor, and one caller's context must not cut short
// another's send), and so does a reader whose ctx can end: a context is
// looked at every cancelPoll, or exactly at its deadline.
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

// recv receives one message into buf, oob and fds (see protocol.Recv),
// waiting until one arrives, ctx ends or the socket is shut down (which
// reads as end of stream). The caller holds the reading role.
//
// With a context that cannot end it blocks in recvmsg itself: one system
// call per reply. Otherwise it waits in ppoll first (pollWait). Either way
// the wait is a system call the runtime knows of, so that a slow open
// holds a thread but not a P.
func (s *sock) recv(ctx context.Context, buf, oob []byte, fds []int) (protocol.Msg, error) {
	if !s.acquire() {
		return protocol.Msg{}, errSocketClosed
	}
	defer s.release()
	if ctx.Done() == nil {
		return protocol.Recv(s.fd, buf, oob, fds, 0)
	}
	for {
		if err := s.pollWait(ctx, unix.POLLIN); err != nil {
			return protocol.Msg{}, err
		}
		m, err := protocol.Recv(s.fd, buf, oob, fds, unix.MSG_DONTWAIT)
		if err != unix.EAGAIN {
			return m, err
		}
	}
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
