//go:build linux

package protocol_test

import (
	"fmt"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/protocol"
)

// noLeaks records the number of open descriptors now and checks, when the
// test and every cleanup registered after this call have finished, that it
// is the same. Call it first in a test, before registering cleanups that
// close what the test owns.
func noLeaks(t testing.TB) {
	t.Helper()
	before := testutil.FDs(t, 0)
	t.Cleanup(func() {
		if after := testutil.FDs(t, 0); after != before {
			t.Errorf("open descriptors: got %d after the test, want %d (as before it)", after, before)
		}
	})
}

// pair returns a connected SOCK_SEQPACKET pair closed at cleanup.
func pair(t testing.TB) (a, b int) {
	t.Helper()
	a, b, err := protocol.Socketpair()
	if err != nil {
		t.Fatalf("Socketpair: %v", err)
	}
	t.Cleanup(func() {
		unix.Close(a)
		unix.Close(b)
	})
	return a, b
}

// pairClosable is pair for a test that closes an end itself: closeEnd
// closes a or b now, and the cleanup closes only the ends still open.
func pairClosable(t testing.TB) (a, b int, closeEnd func(fd int) error) {
	t.Helper()
	a, b, err := protocol.Socketpair()
	if err != nil {
		t.Fatalf("Socketpair: %v", err)
	}
	open := map[int]bool{a: true, b: true}
	t.Cleanup(func() {
		for fd := range open {
			unix.Close(fd)
		}
	})
	closeEnd = func(fd int) error {
		delete(open, fd)
		return unix.Close(fd)
	}
	return a, b, closeEnd
}

// makeFDs returns n descriptors, each for a distinct file (a memfd), closed
// at cleanup. They are deliberately not close-on-exec, so that the
// close-on-exec flag seen on a received copy comes from the receiver.
func makeFDs(t testing.TB, n int) []int {
	t.Helper()
	fds := make([]int, 0, n)
	t.Cleanup(func() { closeFDs(fds) })
	for i := 0; i < n; i++ {
		fd, err := unix.MemfdCreate(fmt.Sprintf("privsep-test-%d", i), 0)
		if err != nil {
			t.Fatalf("memfd_create: %v", err)
		}
		fds = append(fds, fd)
	}
	return fds
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

type fileID struct{ dev, ino uint64 }

func identity(t testing.TB, fd int) fileID {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatalf("fstat(%d): %v", fd, err)
	}
	return fileID{uint64(st.Dev), uint64(st.Ino)} // uint32 on mips
}

// buffers returns a receive buffer, a control buffer and a descriptor slice
// of the sizes Recv documents.
func buffers() (buf, oob []byte, fds []int) {
	return make([]byte, protocol.MaxMessage), make([]byte, protocol.OOBSize), make([]int, 0, protocol.MaxFDs)
}
