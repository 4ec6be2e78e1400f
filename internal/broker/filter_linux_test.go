//go:build linux && (amd64 || arm64)

package broker

import (
	"encoding/binary"
	"runtime"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// seccompInput is struct seccomp_data as x/net/bpf's VM reads it. The VM
// loads words big-endian, as from a packet, while the kernel loads them in
// the host's order; writing each 32-bit field big-endian gives the VM the
// same values the kernel's filter sees.
func seccompInput(arch, nr uint32) []byte {
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b[offNr:], nr)
	binary.BigEndian.PutUint32(b[offArch:], arch)
	return b
}

func TestFilterProgram(t *testing.T) {
	vm, err := bpf.NewVM(filterProgram())
	if err != nil {
		t.Fatalf("filter does not load in the VM: %v", err)
	}
	const (
		allow  = unix.SECCOMP_RET_ALLOW
		notify = unix.SECCOMP_RET_USER_NOTIF
		kill   = unix.SECCOMP_RET_KILL_PROCESS
	)
	type tc struct {
		name     string
		arch, nr uint32
		want     uint32
	}
	cases := []tc{
		{"read", nativeArch, unix.SYS_READ, allow},
		{"execve", nativeArch, unix.SYS_EXECVE, allow},
		{"close", nativeArch, unix.SYS_CLOSE, allow},
		{"openat", nativeArch, unix.SYS_OPENAT, notify},
		{"openat2", nativeArch, unix.SYS_OPENAT2, notify},
		{"open_by_handle_at", nativeArch, unix.SYS_OPEN_BY_HANDLE_AT, allow},
		{"foreign arch openat", unix.AUDIT_ARCH_I386, unix.SYS_OPENAT, kill},
		{"foreign arch read", unix.AUDIT_ARCH_I386, 3, kill},
		{"arm on arm64 / i386 on amd64: i386 open", unix.AUDIT_ARCH_I386, 5, kill},
		{"32-bit arm openat", unix.AUDIT_ARCH_ARM, 322, kill},
		{"no arch", 0, unix.SYS_OPENAT, kill},
	}
	for _, c := range notified {
		cases = append(cases, tc{"notified " + string(c.name), nativeArch, c.nr, notify})
	}
	if runtime.GOARCH == "amd64" {
		cases = append(cases,
			tc{"open", nativeArch, 2, notify},
			tc{"creat", nativeArch, 85, notify},
			tc{"x32 openat", nativeArch, x32Bit | 257, kill},
			tc{"x32 read", nativeArch, x32Bit, kill},
			tc{"x32 open (number 2 with the bit)", nativeArch, x32Bit | 2, kill})
	}
	for _, c := range cases {
		got, err := vm.Run(seccompInput(c.arch, c.nr))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if uint32(got) != c.want {
			t.Errorf("%s (arch %#x, nr %#x): got %#x, want %#x", c.name, c.arch, c.nr, uint32(got), c.want)
		}
	}
}

func TestFilterAssembles(t *testing.T) {
	raw, err := bpf.Assemble(filterProgram())
	if err != nil {
		t.Fatal(err)
	}
	// BPF_MAXINSNS is 4096; the jumps are 8-bit: a short program keeps
	// every jump in range, which Assemble checked.
	if len(raw) > 64 {
		t.Errorf("filter has %d instructions, want a short program", len(raw))
	}
}
