//go:build linux

package opener

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/protocol"
)

// Conn is one session's socket, waited on through the Go runtime's poller:
// a worker waiting for a request parks its goroutine rather than holding a
// thread in a blocking recvmsg, which the runtime's monitor would otherwise
// wake up every 20 µs to take the thread's scheduler slot back.
type Conn struct {
	fd int
	f  *os.File // keeps the poller registration; owns fd (nil for a connection made by ConnOf)
	rc syscall.RawConn

	// sendFn, when not nil, replaces the wait for room in the peer's
	// queue: a server bounds it, since its clients are not trusted to read
	// their replies. Nil in the opener process, whose one parent is.
	sendFn func(msg []byte, fds []int) error
}

// ConnOf wraps a connection someone else owns (a server's accepted
// *net.UnixConn: fd and rc are its, and it must stay open while the Conn is
// in use). send, when not nil, sends every message instead of the
// unbounded wait; it takes what protocol.Send takes.
func ConnOf(fd int, rc syscall.RawConn, send func(msg []byte, fds []int) error) *Conn {
	return &Conn{fd: fd, rc: rc, sendFn: send}
}

func newConn(fd int) (*Conn, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, fmt.Errorf("making descriptor %d non-blocking: %w", fd, err)
	}
	f := os.NewFile(uintptr(fd), "privsep-opener-socket")
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("descriptor %d: %w", fd, err)
	}
	return &Conn{fd: fd, f: f, rc: rc}, nil
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
}

func newIO(c *Conn, buf, oob []byte, fds []int) *connIO {
	x := &connIO{c: c, buf: buf, oob: oob, fds: fds}
	x.tryRecv = func(fd uintptr) bool {
		x.m, x.err = protocol.Recv(int(fd), x.buf, x.oob, x.fds, unix.MSG_DONTWAIT)
		return x.err != unix.EAGAIN
	}
	x.trySend = func(fd uintptr) bool {
		x.err = protocol.Send(int(fd), x.msg, x.sfds, unix.MSG_DONTWAIT)
		return x.err != unix.EAGAIN
	}
	return x
}

// recv receives one message, waiting for it as long as it takes. The
// message's payload and descriptors live in the io's buffers until the next
// recv.
func (x *connIO) recv() (protocol.Msg, error) {
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
