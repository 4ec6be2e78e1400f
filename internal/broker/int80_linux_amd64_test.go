package broker

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/testutil"
)

// int80Main opens args[0] with the i386 ABI's open (number 5), the way a
// program trying to get around a filter that checks only x86-64 numbers
// would, and prints the result.
func int80Main(args []string) int {
	// The i386 ABI takes 32-bit pointers: the path must live below 4 GiB.
	mem, err := unix.Mmap(-1, 0, unix.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_32BIT)
	if err != nil {
		fmt.Println("mmap", err)
		return 1
	}
	copy(mem, args[0])
	mem[len(args[0])] = 0
	r := int32(int80(5, uintptr(unsafe.Pointer(&mem[0])), unix.O_RDONLY, 0))
	fmt.Println("int80 open returned", r)
	return 0
}

func TestBrokerForeignABIKills(t *testing.T) {
	needRoot(t)
	f := newFixture(t)
	bin := testutil.CopySelf(t, filepath.Join(f.base, "broker.test"))
	d := newTestDecider(t, "r:"+f.privKey)
	// Without the filter, as root, the call works: the kernel runs i386
	// calls and the path is right.
	r := runBrokered(t, d, runOpts{execRole: "int80", noFilter: true}, bin, f.privKey)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "int80 open returned ") || strings.Contains(r.stdout, "returned -") {
		t.Skipf("i386 system calls do not work here (no IA32 emulation?): exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	r = runBrokered(t, d, runOpts{execRole: "int80"}, bin, f.privKey)
	if r.signal != syscall.SIGSYS || r.stdout != "" {
		t.Fatalf("an i386 open under the filter: exit %d, stdout %q, stderr %q; want killed by SIGSYS", r.code, r.stdout, r.stderr)
	}
	if d.served.Load() != 0 {
		t.Errorf("served %d opens", d.served.Load())
	}
}
