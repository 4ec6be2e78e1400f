//go:build linux

package protocol

// All of the package's unsafe code lives in this file: the raw sendmsg and
// recvmsg calls and the control-message walk. They are written here rather
// than taken from x/sys/unix because the wrappers there allocate on every
// call (a ParseSocketControlMessage slice, a Sockaddr, the control buffer),
// and this is the per-request path of both sides.

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sendmsg sends p with fds attached as one SCM_RIGHTS control message.
func sendmsg(fd int, p []byte, fds []int, flags int) (int, error) {
	// An aligned, stack-allocated control buffer big enough for MaxFDs.
	var ctl [(unix.SizeofCmsghdr + 4*MaxFDs + 7) / 8]uint64
	var iov unix.Iovec
	var msg unix.Msghdr
	iov.Base = &p[0]
	iov.SetLen(len(p))
	msg.Iov = &iov
	msg.Iovlen = 1
	if len(fds) > 0 {
		oob := unsafe.Slice((*byte)(unsafe.Pointer(&ctl[0])), len(ctl)*8)
		h := (*unix.Cmsghdr)(unsafe.Pointer(&ctl[0]))
		h.Level = unix.SOL_SOCKET
		h.Type = unix.SCM_RIGHTS
		h.SetLen(unix.CmsgLen(4 * len(fds)))
		data := oob[unix.CmsgLen(0):]
		for i, f := range fds {
			binary.NativeEndian.PutUint32(data[4*i:], uint32(int32(f)))
		}
		msg.Control = &oob[0]
		msg.SetControllen(unix.CmsgSpace(4 * len(fds)))
	}
	n, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// recvmsg receives one message into p and its control data into oob.
// It returns the data length, the control length and msg_flags.
func recvmsg(fd int, p, oob []byte, flags int) (n, oobn, rflags int, err error) {
	if len(p) == 0 {
		return 0, 0, 0, unix.EINVAL // a message always has a header
	}
	var iov unix.Iovec
	var msg unix.Msghdr
	iov.Base = &p[0]
	iov.SetLen(len(p))
	msg.Iov = &iov
	msg.Iovlen = 1
	if len(oob) > 0 {
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
	}
	r, _, e := unix.Syscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags))
	if e != 0 {
		return 0, 0, 0, e
	}
	return int(r), int(msg.Controllen), int(msg.Flags), nil
}

// parseRights walks the control messages in oob and appends every descriptor
// carried by SCM_RIGHTS to fds. It collects descriptors from all of them
// before it reports a problem, so that the caller can close everything that
// arrived. Any control message other than SCM_RIGHTS is an error.
func parseRights(oob []byte, fds []int) ([]int, error) {
	var bad error
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			// The kernel never writes this; stop rather than read past it.
			return fds, malformed("control message length %d out of range", h.Len)
		}
		data := oob[unix.CmsgLen(0):l]
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_RIGHTS {
			for i := 0; i+4 <= len(data); i += 4 {
				fds = append(fds, int(int32(binary.NativeEndian.Uint32(data[i:]))))
			}
		} else if bad == nil {
			bad = malformed("unexpected control message level %d type %d", h.Level, h.Type)
		}
		next := unix.CmsgSpace(l - unix.CmsgLen(0))
		if next >= len(oob) {
			break
		}
		oob = oob[next:]
	}
	return fds, bad
}
