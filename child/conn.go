package child

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/protocol"
)

// conn is the opener's end of the socket, waited on through the Go
// runtime's poller: a worker waiting for a request parks its goroutine
// rather than holding a thread in a blocking recvmsg, which the runtime's
// monitor would otherwise wake up every 20 µs to take the thread's
// scheduler slot back.
type conn struct {
	fd int
	f  *os.File // keeps the poller registration; owns fd (nil for a server's client, see connOf)
	rc syscall.RawConn

	// bound, for a server's client, bounds how long send waits for room in
	// the client's queue (see sendBounded in server.go). Nil in the opener
	// process, whose one parent is trusted to read its replies.
	bound *sendBound
}

// connOf wraps a server's connection to one client: fd and rc are an
// accepted *net.UnixConn's, which keeps owning the descriptor and must stay
// open while the conn is in use.
func connOf(fd int, rc syscall.RawConn, bound *sendBound) *conn {
	return &conn{fd: fd, rc: rc, bound: bound}
}

func newConn(fd int) (*conn, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, fmt.Errorf("making descriptor %d non-blocking: %w", fd, err)
	}
	f := os.NewFile(uintptr(fd), "privsep-opener-socket")
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("descriptor %d: %w", fd, err)
	}
	return &conn{fd: fd, f: f, rc: rc}, nil
}

// recv receives one message, waiting for it as long as it takes.
func (c *conn) recv(buf, oob []byte, fds []int) (m protocol.Msg, err error) {
	rerr := c.rc.Read(func(fd uintptr) bool {
		m, err = protocol.Recv(int(fd), buf, oob, fds, unix.MSG_DONTWAIT)
		return err != unix.EAGAIN
	})
	if rerr != nil {
		return protocol.Msg{}, rerr
	}
	return m, err
}

// send sends one message, waiting for room in the peer's queue.
func (c *conn) send(msg []byte, fds []int) (err error) {
	if c.bound != nil {
		return c.sendBounded(msg, fds)
	}
	werr := c.rc.Write(func(fd uintptr) bool {
		err = protocol.Send(int(fd), msg, fds, unix.MSG_DONTWAIT)
		return err != unix.EAGAIN
	})
	if werr != nil {
		return werr
	}
	return err
}

// trySend sends without waiting; for last words before exiting.
func (c *conn) trySend(msg []byte) {
	_ = protocol.Send(c.fd, msg, nil, unix.MSG_DONTWAIT)
}
