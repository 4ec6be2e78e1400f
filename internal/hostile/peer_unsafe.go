//go:build linux

package hostile

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SendRaw is one raw sendmsg(2) on fd, with MSG_NOSIGNAL added. EAGAIN is
// returned bare.
func SendRaw(fd int, data, oob []byte, flags int) error {
	var msg unix.Msghdr
	var iov unix.Iovec
	if len(data) > 0 {
		iov.Base = &data[0]
		iov.SetLen(len(data))
		msg.Iov = &iov
		msg.Iovlen = 1
	}
	if len(oob) > 0 {
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
	}
	for {
		n, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags|unix.MSG_NOSIGNAL))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		if int(n) != len(data) {
			return fmt.Errorf("sendmsg sent %d of %d bytes", n, len(data))
		}
		return nil
	}
}
