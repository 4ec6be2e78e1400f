//go:build linux

package protocol

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestConsecutive(t *testing.T) {
	for _, c := range []struct {
		fds  []int
		want bool
	}{
		{nil, false},
		{[]int{7}, false}, // one: close(2) is as cheap
		{[]int{7, 8}, true},
		{[]int{7, 8, 9, 10}, true},
		{[]int{8, 7}, false}, // descending: not checked for, so not taken
		{[]int{7, 9}, false},
		{[]int{7, 8, 8}, false},
		{[]int{7, 8, 10, 11}, false},
		{[]int{-1, 0}, false},
	} {
		if got := consecutive(c.fds); got != c.want {
			t.Errorf("consecutive(%v) = %v, want %v", c.fds, got, c.want)
		}
	}
}

// TestCloseAllClosesOnlyItsOwn: a run closed with close_range, and a set
// with a gap closed one by one, leave the descriptors around them open.
func TestCloseAllClosesOnlyItsOwn(t *testing.T) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	const base = 900 // well above anything this test process holds
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil || lim.Cur <= base+20 {
		t.Skipf("RLIMIT_NOFILE %d: need more than %d descriptors", lim.Cur, base+20)
	}
	open := func(fd int) bool {
		_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		return err == nil
	}
	for _, c := range []struct {
		name  string
		close []int // closed by closeAll
		keep  []int // open around them, closed by the test
	}{
		{"run", []int{base + 1, base + 2, base + 3, base + 4, base + 5}, []int{base, base + 6}},
		{"gap", []int{base + 1, base + 2, base + 4}, []int{base, base + 3, base + 5}},
		{"descending", []int{base + 3, base + 2, base + 1}, []int{base, base + 4}},
	} {
		for _, fd := range append(append([]int(nil), c.close...), c.keep...) {
			if open(fd) {
				t.Fatalf("%s: descriptor %d is already open", c.name, fd)
			}
			if err := unix.Dup3(int(null.Fd()), fd, unix.O_CLOEXEC); err != nil {
				t.Fatal(err)
			}
		}
		closeAll(c.close)
		for _, fd := range c.close {
			if open(fd) {
				t.Errorf("%s: descriptor %d still open after closeAll(%v)", c.name, fd, c.close)
				unix.Close(fd)
			}
		}
		for _, fd := range c.keep {
			if !open(fd) {
				t.Errorf("%s: descriptor %d, not in closeAll(%v), was closed", c.name, fd, c.close)
			}
			unix.Close(fd)
		}
	}
}
