//go:build linux

package testutil

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ProcDir is /proc/self for pid 0, else /proc/PID.
func ProcDir(pid int) string {
	if pid == 0 {
		return "/proc/self"
	}
	return "/proc/" + strconv.Itoa(pid)
}

// runtimeFD reports whether a descriptor's target is one the Go runtime
// opens on its own, at a moment no test controls: the netpoller's epoll and
// eventfd, created lazily by the first pollable file, and the cgroup files
// it reads to size GOMAXPROCS. Counting them would make a count depend on
// what else the process happened to do first.
func runtimeFD(target string) bool {
	return target == "anon_inode:[eventpoll]" || target == "anon_inode:[eventfd]" || strings.HasPrefix(target, "/sys/fs/cgroup/")
}

// CountFDs counts the open descriptors of pid (0 for this process), leaving
// out the Go runtime's own (see runtimeFD). The descriptor ReadDir had open
// on the directory is not counted either: it is closed by the time its link
// is read.
func CountFDs(pid int) (int, error) {
	dir := ProcDir(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		l, err := os.Readlink(dir + "/" + e.Name())
		if err != nil || runtimeFD(l) {
			continue // closed since ReadDir, or the runtime's own
		}
		n++
	}
	return n, nil
}

// FDs is CountFDs that fails the test on error.
func FDs(t testing.TB, pid int) int {
	t.Helper()
	n, err := CountFDs(pid)
	if err != nil {
		t.Fatalf("counting the descriptors of %s: %v", ProcDir(pid), err)
	}
	return n
}

// SettledFDs counts pid's descriptors once the count stops moving, or as
// soon as it equals want (want < 0: no target), giving up after about a
// second. The opener closes its copy of a descriptor just after sending it,
// so a count taken right after a reply may still include it.
func SettledFDs(pid, want int) (int, error) {
	last, err := CountFDs(pid)
	if err != nil {
		return 0, err
	}
	for i := 0; i < 200 && last != want; i++ {
		time.Sleep(5 * time.Millisecond)
		n, err := CountFDs(pid)
		if err != nil {
			return 0, err
		}
		if n == last && want < 0 && i >= 2 {
			break
		}
		last = n
	}
	return last, nil
}

// FDsSettled is SettledFDs that fails the test on error.
func FDsSettled(t testing.TB, pid, want int) int {
	t.Helper()
	n, err := SettledFDs(pid, want)
	if err != nil {
		t.Fatalf("counting the descriptors of %s: %v", ProcDir(pid), err)
	}
	return n
}

// FDList lists pid's descriptors with their targets, for failure messages.
func FDList(pid int) string {
	dir := ProcDir(pid) + "/fd"
	ents, _ := os.ReadDir(dir)
	var b strings.Builder
	for _, e := range ents {
		l, _ := os.Readlink(dir + "/" + e.Name())
		fmt.Fprintf(&b, "%s->%s ", e.Name(), l)
	}
	return b.String()
}

// Pipe returns the two ends of a close-on-exec pipe, closed when the test
// ends: descriptors for a test to attach to a message.
func Pipe(t testing.TB) []int {
	t.Helper()
	p := make([]int, 2)
	Must(t, unix.Pipe2(p, unix.O_CLOEXEC))
	t.Cleanup(func() {
		unix.Close(p[0])
		unix.Close(p[1])
	})
	return p
}

// LoadLocalZone loads the local time zone now. The time package opens the
// zone file ($TZ or /etc/localtime) on the first use of local time (a log
// line, a formatted time), at a moment no test controls, and a descriptor
// count taken in that moment sees it. A TestMain calls this once the
// process knows it is the test process and not an opener it started.
func LoadLocalZone() { _ = time.Local.String() }
