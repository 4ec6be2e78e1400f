//go:build linux

package opener

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/protocol"
)

// Conn is one session's socket. The re-executed opener's one socket is in
// blocking mode and its workers call recvmsg and sendmsg on it directly:
// the process has one job, so a worker waiting in the kernel for the next
// request is what it should be doing, and the runtime's poller would add
// an epoll_pwait or two and a goroutine wake-up to every request. Only the
// worker holding the receiving role waits there (see "The receiving role"),
// so the others cost no thread. End of stream, or our own exit, wakes it.
//
// A server's session (ConnOf) waits through the runtime's poller instead: a
// server holds thousands of idle clients, which must not hold a thread
// each, and its sends are bounded because its clients are not trusted to
// read their replies.
type Conn struct {
	fd int
	rc syscall.RawConn // nil: blocking calls on fd, which the Conn owns

	// sendFn, when not nil, replaces the wait for room in the peer's
	// queue: a server bounds it. Nil in the opener process, whose one
	// parent is trusted to read.
	sendFn func(msg []byte, fds []int) error
}

// ConnOf wraps a connection someone else owns (a server's accepted
// *net.UnixConn: fd and rc are its, and it must stay open while the Conn is
// in use). send, when not nil, sends every message instead of the
// unbounded wait; it takes what protocol.Send takes.
func ConnOf(fd int, rc syscall.RawConn, send func(msg []byte, fds []int) error) *Conn {
	return &Conn{fd: fd, rc: rc, sendFn: send}
}

// newConn takes fd, the opener process's socket, and puts it in blocking
// mode: the file description is ours alone (the parent holds the other
// end), and a blocking recvmsg is the cheapest wait there is.
func newConn(fd int) (*Conn, error) {
	if err := unix.SetNonblock(fd, false); err != nil {
		return nil, fmt.Errorf("making descriptor %d blocking: %w", fd, err)
	}
	return &Conn{fd: fd}, nil
}

// close closes a socket the Conn owns (one newConn made).
func (c *Conn) close() {
	if c.rc == nil {
		unix.Close(c.fd)
	}
}

// waitFD waits, in a blocking poll, until fd is ready for events: the
// fallback for a socket that someone put back into non-blocking mode.
func waitFD(fd int, events int16) {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: events}}
	for {
		if _, err := unix.Poll(pfd, -1); err != unix.EINTR {
			return
		}
	}
}

// connIO is one worker's receive and send operations, made once so that
// waiting through the poller allocates nothing per message: a closure
// passed to RawConn.Read escapes, and would be a new allocation on every
// call.
type connIO struct {
	c        *Conn
	buf, oob []byte
	fds      []int
	m        protocol.Msg
	msg      []byte // to send
	sfds     []int  // to send with msg
	err      error
	tryRecv  func(uintptr) bool
	trySend  func(uintptr) bool
	tryPeek  func(uintptr) bool
	peek     []byte
}

func newIO(c *Conn, buf, oob []byte, fds []int) *connIO {
	x := &connIO{c: c, buf: buf, oob: oob, fds: fds}
	x.tryRecv = func(fd uintptr) bool {
		x.m, x.err = protocol.Recv(int(fd), x.buf, x.oob, x.fds, unix.MSG_DONTWAIT)
		return x.err != unix.EAGAIN
	}
	x.tryPeek = func(fd uintptr) bool {
		// Whatever recvmsg says but "nothing yet" (a message, end of
		// stream, an error) is for the receive that follows to report.
		err := protocol.Peek(int(fd), x.peek)
		return err != unix.EAGAIN
	}
	x.trySend = func(fd uintptr) bool {
		x.err = protocol.Send(int(fd), x.msg, x.sfds, unix.MSG_DONTWAIT)
		return x.err != unix.EAGAIN
	}
	return x
}

// wait waits, through the poller, until a message (or end of stream) can
// be received, without taking it: a server's worker waits holding no
// buffers.
func (x *connIO) wait() error {
	if x.peek == nil {
		x.peek = make([]byte, protocol.HeaderSize)
	}
	return x.c.rc.Read(x.tryPeek)
}

// recv receives one message, waiting for it as long as it takes. The
// message's payload and descriptors live in the io's buffers until the next
// recv.
func (x *connIO) recv() (protocol.Msg, error) {
	if x.c.rc == nil {
		for {
			m, err := protocol.Recv(x.c.fd, x.buf, x.oob, x.fds, 0)
			if err != unix.EAGAIN {
				return m, err
			}
			waitFD(x.c.fd, unix.POLLIN)
		}
	}
	if err := x.c.rc.Read(x.tryRecv); err != nil {
		return protocol.Msg{}, err
	}
	return x.m, x.err
}

// send sends one message, waiting for room in the peer's queue.
func (x *connIO) send(msg []byte, fds []int) error {
	if x.c.sendFn != nil {
		return x.c.sendFn(msg, fds)
	}
	if x.c.rc == nil {
		// Flow control is the socket's: the parent reads its replies.
		for {
			err := protocol.Send(x.c.fd, msg, fds, 0)
			if err != unix.EAGAIN {
				return err
			}
			waitFD(x.c.fd, unix.POLLOUT)
		}
	}
	x.msg, x.sfds = msg, fds
	err := x.c.rc.Write(x.trySend)
	x.msg, x.sfds = nil, nil
	if err != nil {
		return err
	}
	return x.err
}

// recv receives one message into the given buffers; for the handshake.
func (c *Conn) recv(buf, oob []byte, fds []int) (protocol.Msg, error) {
	return newIO(c, buf, oob, fds).recv()
}

// send sends one message; for the handshake.
func (c *Conn) send(msg []byte, fds []int) error {
	return newIO(c, nil, nil, nil).send(msg, fds)
}

// trySend sends without waiting; for last words before exiting.
func (c *Conn) trySend(msg []byte) {
	_ = protocol.Send(c.fd, msg, nil, unix.MSG_DONTWAIT)
}
