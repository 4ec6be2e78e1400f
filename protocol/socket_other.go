//go:build !linux

package protocol

import (
	"errors"
	"fmt"
	"runtime"
)

// The socket half of the package is Linux-only (SOCK_SEQPACKET with
// MSG_CMSG_CLOEXEC, POLLRDHUP, the raw sendmsg and recvmsg): the opener
// runs only on Linux, so elsewhere there is no peer to talk to. The message
// encoding builds and works everywhere; these keep the socket API's names
// so that programs embedding the library compile, and fail at run time
// with an error matching errors.ErrUnsupported. The declarations mirror
// socket.go.

// OOBSize is the size of the control buffer Recv needs. Recv never runs
// here, so it is only a plausible size.
const OOBSize = 4 * MaxFDs

func errUnsupported(op string) error {
	return fmt.Errorf("protocol: %s: the opener's socket needs Linux; this is %s/%s: %w",
		op, runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)
}

// Socketpair fails with an error matching errors.ErrUnsupported.
func Socketpair() (a, b int, err error) { return -1, -1, errUnsupported("socketpair") }

// Send fails with an error matching errors.ErrUnsupported.
func Send(fd int, msg []byte, fds []int, flags int) error { return errUnsupported("sendmsg") }

// Msg is one received message (see socket.go).
type Msg struct {
	Header
	Payload []byte
	FDs     []int
}

// ErrFDsDropped is matched by the error Recv returns on Linux when the
// kernel could not install every descriptor (see socket.go).
var ErrFDsDropped = errors.New("descriptors dropped in transit (MSG_CTRUNC)")

// Recv fails with an error matching errors.ErrUnsupported.
func Recv(fd int, buf, oob []byte, fds []int, flags int) (Msg, error) {
	return Msg{}, errUnsupported("recvmsg")
}

// CloseFDs closes every descriptor in fds, ignoring errors.
func CloseFDs(fds []int) {
	for _, fd := range fds {
		closeFD(fd)
	}
}
