//go:build linux

package bench

import (
	"os"
	"os/exec"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/testutil"
)

// canCount skips a test where perf events cannot count here, unless we are
// root, where they must: CI runs as root, so a broken counter fails there.
func canCount(t *testing.T) {
	t.Helper()
	c, err := countProcs(0)
	if err == nil {
		c.close()
		return
	}
	if os.Geteuid() == 0 {
		t.Fatalf("root cannot count system calls: %v", err)
	}
	t.Skipf("system calls cannot be counted here: %v", err)
}

// TestCountOps counts a known number of getppid calls: every one is
// counted, and the loop adds next to nothing.
func TestCountOps(t *testing.T) {
	canCount(t)
	before := testutil.FDs(t, os.Getpid())
	const n = 5000
	per, err := countOps([]int{0}, n, func() error { unix.Getppid(); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if per.Syscalls < 1 || per.Syscalls > 1.5 {
		t.Errorf("%d getppid calls counted as %.3f system calls each, want 1 (and at most a little more)", n, per.Syscalls)
	}
	if after := testutil.FDs(t, os.Getpid()); after != before {
		t.Errorf("descriptors: %d before counting, %d after", before, after)
	}
}

// getppidsEnv makes TestHelperGetppids call getppid the given number of
// times and exit.
const getppidsEnv = "PRIVSEP_BENCH_GETPPIDS"

func TestHelperGetppids(t *testing.T) {
	v := os.Getenv(getppidsEnv)
	if v == "" {
		t.Skip("the counted child of TestCountCommand")
	}
	n, _ := strconv.Atoi(v)
	for range n {
		unix.Getppid()
	}
}

// TestCountCommand: what a command does is counted through its fork and
// exec; two runs that differ by n getppid calls differ by n.
func TestCountCommand(t *testing.T) {
	canCount(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	run := func(n int) Events {
		t.Helper()
		cmd := exec.Command(self, "-test.run=^TestHelperGetppids$")
		cmd.Env = append(os.Environ(), getppidsEnv+"="+strconv.Itoa(n))
		e, err := countCommand(cmd)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	const n = 20000
	few, many := run(0), run(n)
	// The test binary's own start varies by some hundreds of calls (the
	// runtime's threads, the scheduler): allow a tenth of n either way.
	if d := int64(many.Syscalls) - int64(few.Syscalls); d < n*9/10 || d > n*11/10 {
		t.Errorf("a child making %d more getppid calls counted %d more system calls (%d, %d)", n, d, few.Syscalls, many.Syscalls)
	}
	if few.Syscalls < 50 {
		t.Errorf("starting the test binary counted %d system calls: the child was not counted", few.Syscalls)
	}
	if _, err := countCommand(exec.Command(self, "-test.run=^$", "-no-such-flag")); err == nil {
		t.Error("countCommand of a failing command: no error")
	}
}
