//go:build linux

package testutil

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// DialAs connects a SOCK_SEQPACKET socket to the unix socket at path with
// this thread's effective uid set to uid, so that the server's SO_PEERCRED
// names uid, and returns the connected descriptor, which the caller closes.
// Only this thread changes credentials (the raw setresuid system call, not
// syscall.Setresuid, which changes every thread), and only for the
// socket(2) and connect(2); the saved uid stays 0, so it can change back.
// It needs root; the socket's directories and file must let uid reach and
// connect to it.
func DialAs(t testing.TB, path string, uid uint32) int {
	t.Helper()
	runtime.LockOSThread()
	keep := uintptr(^uint(0)) // -1: leave that id as it is
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, keep, uintptr(uid), keep); e != 0 {
		runtime.UnlockOSThread()
		t.Fatalf("setresuid(-1, %d, -1) on this thread: %v", uid, e)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		if err = unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
			unix.Close(fd)
		}
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, keep, 0, keep); e != 0 {
		// Still locked: the thread ends with this goroutine, and no other
		// goroutine ever runs with uid's credentials.
		t.Fatalf("setresuid back to 0 on this thread: %v", e)
	}
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatalf("connect to %s as uid %d: %v", path, uid, err)
	}
	return fd
}
