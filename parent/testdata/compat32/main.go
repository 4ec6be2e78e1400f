//go:build linux && 386

// Command compat32 is built for linux/386 and run by TestMPTCPFilterCompat32
// under a sandbox an amd64 process applied: it makes sockets through each
// 32-bit entry point (int 0x80, audit arch i386) and prints what the
// kernel said, one "name errno" line each.
package main

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	report := func(name string, r uintptr, e unix.Errno) {
		if e == 0 {
			unix.Close(int(r))
			fmt.Printf("%s ok\n", name)
			return
		}
		fmt.Printf("%s %s\n", name, unix.ErrnoName(e))
	}
	const mptcp, sysSocket, sysRecvmsg = 262, 1, 17
	r, _, e := unix.RawSyscall(359, unix.AF_INET, unix.SOCK_STREAM, mptcp) // socket(2)
	report("socket-mptcp", r, e)
	r, _, e = unix.RawSyscall(359, unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP)
	report("socket-tcp", r, e)
	args := [3]uint32{unix.AF_INET, unix.SOCK_STREAM, mptcp}
	r, _, e = unix.RawSyscall(102, sysSocket, uintptr(unsafe.Pointer(&args)), 0) // socketcall(2)
	report("socketcall-socket", r, e)
	bad := [3]uint32{0xffff, 0, 0} // recvmsg on no descriptor: EBADF if it gets through
	_, _, e = unix.RawSyscall(102, sysRecvmsg, uintptr(unsafe.Pointer(&bad)), 0)
	fmt.Printf("socketcall-recvmsg %s\n", unix.ErrnoName(e))
	var params [120]byte
	r, _, e = unix.RawSyscall(425, 4, uintptr(unsafe.Pointer(&params)), 0) // io_uring_setup
	report("io_uring_setup", r, e)
}
