//go:build linux && (amd64 || arm64)

package broker

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's structures from <linux/seccomp.h>; x/sys has the ioctl
// numbers but not these types. All unsafe code of the package is here.

type seccompData struct {
	Nr   int32
	Arch uint32
	IP   uint64
	Args [6]uint64
}

type seccompNotif struct {
	ID    uint64
	PID   uint32
	Flags uint32
	Data  seccompData
}

type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

type seccompNotifAddfd struct {
	ID         uint64
	Flags      uint32
	Srcfd      uint32
	Newfd      uint32
	NewfdFlags uint32
}

func ioctlPtr(fd int, req uint, p unsafe.Pointer) (int, error) {
	r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(p))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// notifRecv receives one notification. The kernel wants the buffer zeroed.
func notifRecv(fd int, n *seccompNotif) error {
	*n = seccompNotif{}
	_, err := ioctlPtr(fd, unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(n))
	return err
}

// notifIDValid reports nil while the call with id is still waiting for an
// answer, ENOENT once its thread has died or the call was interrupted.
func notifIDValid(fd int, id uint64) error {
	_, err := ioctlPtr(fd, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, unsafe.Pointer(&id))
	return err
}

func notifSend(fd int, r *seccompNotifResp) error {
	_, err := ioctlPtr(fd, unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(r))
	return err
}

// notifAddfdSend installs a copy of src in the target and, atomically,
// makes its number the call's result (SECCOMP_ADDFD_FLAG_SEND, 5.14).
func notifAddfdSend(fd int, id uint64, src int, cloexec bool) (int, error) {
	a := seccompNotifAddfd{ID: id, Flags: unix.SECCOMP_ADDFD_FLAG_SEND, Srcfd: uint32(src)}
	if cloexec {
		a.NewfdFlags = unix.O_CLOEXEC
	}
	return ioctlPtr(fd, unix.SECCOMP_IOCTL_NOTIF_ADDFD, unsafe.Pointer(&a))
}

// readMem copies len(b) bytes at addr of process pid into b, all or
// nothing.
func readMem(pid int, addr uint64, b []byte) error {
	local := []unix.Iovec{{Base: &b[0]}}
	local[0].SetLen(len(b))
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(b)}}
	n, err := unix.ProcessVMReadv(pid, local, remote, 0)
	if err != nil {
		return err
	}
	if n != len(b) {
		return unix.EFAULT
	}
	return nil
}

// Compile-time checks that the structures have the kernel's sizes, the
// ones the ioctl numbers encode.
var (
	_ [unsafe.Sizeof(seccompNotif{}) - 80]byte
	_ [80 - unsafe.Sizeof(seccompNotif{})]byte
	_ [unsafe.Sizeof(seccompNotifResp{}) - 24]byte
	_ [24 - unsafe.Sizeof(seccompNotifResp{})]byte
	_ [unsafe.Sizeof(seccompNotifAddfd{}) - 24]byte
	_ [24 - unsafe.Sizeof(seccompNotifAddfd{})]byte
)
