package parent

import (
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

// runFilter runs a seccomp filter of the three instructions mptcpFilter
// uses on one system call, as the kernel would, and returns its verdict.
func runFilter(t *testing.T, f []unix.SockFilter, arch, nr uint32, args [6]uint32) uint32 {
	t.Helper()
	word := func(off uint32) uint32 {
		switch {
		case off == 0:
			return nr
		case off == 4:
			return arch
		case off >= 16 && off < 64 && off%8 == 0:
			return args[(off-16)/8] // the low half of a little-endian slot
		case off >= 16 && off < 64 && off%8 == 4:
			return 0
		}
		t.Fatalf("filter loads offset %d", off)
		return 0
	}
	var a uint32
	for pc := 0; pc < len(f); pc++ {
		in := f[pc]
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			a = word(in.K)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K:
			if a == in.K {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case unix.BPF_RET | unix.BPF_K:
			return in.K
		default:
			t.Fatalf("instruction %d: code %#x", pc, in.Code)
		}
	}
	t.Fatalf("the filter ran off its end")
	return 0
}

// TestMPTCPFilter runs the filter of each architecture that has one on
// the calls a program of each of its ABIs could make: socket(2) with
// IPPROTO_MPTCP is refused with EACCES, with IPPROTO_TCP allowed; another
// call whose third argument happens to be 262 is allowed; i386
// socketcall(SYS_SOCKET), whose protocol the filter cannot see, fails with
// ENOSYS, its other sub-calls (recvmsg: 17) are allowed; io_uring, which
// makes sockets without socket(2), fails with ENOSYS; and a call of an
// ABI the filter does not know fails with ENOSYS. The numbers are those of
// each ABI's own table, so an arch check that mixed them up would fail
// here (i386 41 is dup, x86-64 359 does not exist).
func TestMPTCPFilter(t *testing.T) {
	const (
		allow  = unix.SECCOMP_RET_ALLOW
		eacces = unix.SECCOMP_RET_ERRNO | uint32(unix.EACCES)
		enosys = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
		mptcp  = ipprotoMPTCP
		tcp    = unix.IPPROTO_TCP
	)
	type call struct {
		arch, nr uint32
		args     [6]uint32
		want     uint32
	}
	socket := func(arch, nr, proto uint32, want uint32) call {
		return call{arch, nr, [6]uint32{unix.AF_INET, unix.SOCK_STREAM, proto}, want}
	}
	x86, i386, a64, arm := uint32(unix.AUDIT_ARCH_X86_64), uint32(unix.AUDIT_ARCH_I386), uint32(unix.AUDIT_ARCH_AARCH64), uint32(unix.AUDIT_ARCH_ARM)
	rv64, rv32 := uint32(unix.AUDIT_ARCH_RISCV64), uint32(unix.AUDIT_ARCH_RISCV32)
	for goarch, calls := range map[string][]call{
		"amd64": {
			socket(x86, 41, mptcp, eacces), socket(x86, 41, tcp, allow),
			socket(x86, 0x40000000|41, mptcp, eacces), socket(x86, 0x40000000|41, tcp, allow),
			socket(x86, 42, mptcp, allow), socket(x86, 359, mptcp, allow),
			socket(i386, 359, mptcp, eacces), socket(i386, 359, tcp, allow), socket(i386, 41, mptcp, allow),
			{i386, 102, [6]uint32{1, 0xbffff000}, enosys},
			{i386, 102, [6]uint32{17, 0xbffff000}, allow},
			{x86, 425, [6]uint32{4, 0xc000}, enosys}, {x86, 426, [6]uint32{3, 1, 1}, enosys}, {x86, 427, [6]uint32{3}, enosys},
			{x86, 0x40000000 | 425, [6]uint32{4, 0xc000}, enosys}, {i386, 425, [6]uint32{4, 0xc000}, enosys}, {i386, 426, [6]uint32{3}, enosys},
			socket(a64, 198, tcp, enosys),
		},
		"arm64": {
			socket(a64, 198, mptcp, eacces), socket(a64, 198, tcp, allow), socket(a64, 203, mptcp, allow),
			socket(arm, 281, mptcp, eacces), socket(arm, 281, tcp, allow), socket(arm, 198, mptcp, allow),
			socket(x86, 41, tcp, enosys),
			{a64, 425, [6]uint32{4}, enosys}, {a64, 426, [6]uint32{3}, enosys}, {arm, 425, [6]uint32{4}, enosys},
		},
		"arm": {
			socket(arm, 281, mptcp, eacces), socket(arm, 281, tcp, allow), socket(arm, 283, mptcp, allow),
			socket(a64, 198, tcp, enosys),
			{arm, 425, [6]uint32{4}, enosys}, {arm, 427, [6]uint32{3}, enosys},
		},
		"riscv64": {
			socket(rv64, 198, mptcp, eacces), socket(rv64, 198, tcp, allow), socket(rv64, 203, mptcp, allow),
			socket(rv32, 198, mptcp, eacces), socket(rv32, 198, tcp, allow),
			{rv64, 425, [6]uint32{4}, enosys}, {rv32, 426, [6]uint32{3}, enosys},
			socket(a64, 198, tcp, enosys),
		},
	} {
		f := mptcpFilter(mptcpArchesFor(goarch))
		for _, c := range calls {
			if got := runFilter(t, f, c.arch, c.nr, c.args); got != c.want {
				t.Errorf("%s filter, arch %#x call %d args %v: %s, want %s", goarch, c.arch, c.nr, c.args[:3], verdict(got), verdict(c.want))
			}
		}
	}
	for _, goarch := range []string{"386", "ppc64le", "s390x", "mips64le", "loong64"} {
		if a := mptcpArchesFor(goarch); a != nil {
			t.Errorf("%s has a filter %v; without a sound one it must have none", goarch, a)
		}
	}
}

func verdict(v uint32) string {
	if v&unix.SECCOMP_RET_ACTION_FULL == unix.SECCOMP_RET_ERRNO {
		return unix.Errno(v & unix.SECCOMP_RET_DATA).Error()
	}
	if v == unix.SECCOMP_RET_ALLOW {
		return "allowed"
	}
	return fmt.Sprintf("%#x", v)
}
