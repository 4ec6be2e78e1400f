//go:build linux && (amd64 || arm64)

package broker

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/testutil"
)

// swapMain is a hostile brokered program: one thread flips the last byte
// of a path buffer between the allowed name and a forbidden one of the
// same length while another opens the buffer again and again, hoping the
// broker decides on one name and opens the other. It prints what it got:
// "allowed N forbidden N refused N".
func swapMain(args []string) int {
	if len(args) != 4 {
		return 2
	}
	allowed, forbidden := args[0], args[1]
	n, _ := strconv.Atoi(args[2])
	want := args[3]
	buf := append([]byte(allowed), 0)
	last := &buf[len(allowed)-1]
	a, f := allowed[len(allowed)-1], forbidden[len(forbidden)-1]
	var stop atomic.Bool
	go func() {
		v := a
		for !stop.Load() {
			v ^= a ^ f
			*(*byte)(unsafe.Pointer(last)) = v
		}
	}()
	var got [3]int
	rd := make([]byte, 64)
	for i := 0; i < n; i++ {
		r, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(cwdFD), uintptr(unsafe.Pointer(&buf[0])), unix.O_RDONLY, 0, 0, 0)
		if e != 0 {
			got[2]++
			continue
		}
		k, _ := unix.Read(int(r), rd)
		unix.Close(int(r))
		if string(rd[:k]) == want {
			got[0]++
		} else {
			got[1]++
		}
	}
	stop.Store(true)
	fmt.Printf("allowed %d forbidden %d refused %d\n", got[0], got[1], got[2])
	return 0
}

// TestHostileBrokerPathSwap performs the time-of-check/time-of-use attack
// on the path: another thread rewrites it while the call is in flight.
// The broker reads the path once and opens that copy, so a served open
// always yields the allowed file; a call decided on the forbidden name
// continues and is refused by the program's own credentials. The
// forbidden file's content must never appear.
func TestHostileBrokerPathSwap(t *testing.T) {
	needRoot(t)
	f := newFixture(t)
	forbidden := filepath.Join(f.base, "priv", "kez")
	if err := os.WriteFile(forbidden, []byte("forbidden\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := newTestDecider(t, "r:"+f.privKey)
	bin := testutil.CopySelf(t, filepath.Join(f.base, "broker.test"))
	r := runBrokered(t, d, runOpts{execRole: "swap"}, bin, f.privKey, forbidden, "5000", "priv key\n")
	if r.code != 0 {
		t.Fatalf("swap: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	var allowed, bad, refused int
	if _, err := fmt.Sscanf(strings.TrimSpace(r.stdout), "allowed %d forbidden %d refused %d", &allowed, &bad, &refused); err != nil {
		t.Fatalf("swap printed %q", r.stdout)
	}
	t.Logf("allowed %d, refused %d", allowed, refused)
	if bad != 0 {
		t.Errorf("the program read the forbidden file %d times", bad)
	}
}
