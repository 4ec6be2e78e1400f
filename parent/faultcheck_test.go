//go:build linux

package parent_test

// Helpers of the fault suites (fault_test.go, sockfault_test.go,
// soak_test.go): waiting for what a case held to be given back, checking
// that it was, and describing how an opener ended.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/hostile"
	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/parent"
)

// settleGoroutines waits up to 5s for the goroutine count to drop to want
// and returns the last count.
func settleGoroutines(want int) int {
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settleSelfFDs waits up to 2s for this process's descriptor count to drop
// to want and returns the last count.
func settleSelfFDs(t *testing.T, want int) int {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		n := testutil.FDs(t, 0)
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// status describes how a process state ended: "exit 1", "signal killed".
func status(ps *os.ProcessState) string {
	if ps == nil {
		return "no process state"
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "signal " + ws.Signal().String()
	}
	return fmt.Sprintf("exit %d", ps.ExitCode())
}

// exitStatus describes the status an error carries, or says it has none.
func exitStatus(err error) string {
	var ee *parent.ExitError
	if !errors.As(err, &ee) {
		return "not an *ExitError"
	}
	return status(ee.ProcessState)
}

// short cuts s to n bytes, marking the cut.
func short(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// errText is err's text, "<nil>" for none.
func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// noneKept fails t unless this process's descriptors came back to fds0
// and its goroutines to at most g0 once a case closed everything.
func noneKept(t *testing.T, fds0, fds1, g0, g1 int) {
	t.Helper()
	if fds1 != fds0 || g1 > g0 {
		t.Errorf("descriptors %d→%d, goroutines %d→%d", fds0, fds1, g0, g1)
	}
}

// reportFails fails t with each of the failures a case collected while
// it measured.
func reportFails(t *testing.T, fail []string) {
	t.Helper()
	for _, f := range fail {
		t.Error(f)
	}
}

// startFake starts the fake opener playing scenario, with a rule for
// /etc/hostname and the rest of cfg.
func startFake(t *testing.T, ctx context.Context, fc *hostile.FakeChildren, scenario string, cfg parent.Config) *parent.Opener {
	t.Helper()
	cfg.Executable, cfg.Rules = fc.Path(t, scenario), []string{"/etc/hostname"}
	o, err := parent.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return o
}

// startFakeGroup starts the fake opener playing a scenario that leaves a
// grandchild in the opener's process group, and returns it with its pid,
// the group's id. The group is killed when the test ends, whatever
// happens.
func startFakeGroup(t *testing.T, fc *hostile.FakeChildren, scenario string) (*parent.Opener, int) {
	t.Helper()
	o := startFake(t, context.Background(), fc, scenario, parent.Config{})
	pid := o.PID()
	t.Cleanup(func() { unix.Kill(-pid, unix.SIGKILL) })
	return o, pid
}

// numberedOpener writes n files named 0 to n-1, each holding its own
// name, starts an opener whose rule is their directory, and reads file 0
// once, so that what the parent opens lazily is open before a case counts
// descriptors. read returns file i's content, read through the opener.
func numberedOpener(t *testing.T, n int) (o *parent.Opener, read func(ctx context.Context, i int) (string, error)) {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i < n; i++ {
		testutil.Must(t, os.WriteFile(filepath.Join(dir, strconv.Itoa(i)), []byte(strconv.Itoa(i)), 0o644))
	}
	o = start(t, parent.Config{Rules: []string{dir + "/"}})
	read = func(ctx context.Context, i int) (string, error) {
		f, err := o.Open(ctx, filepath.Join(dir, strconv.Itoa(i)), os.O_RDONLY, 0)
		if err != nil {
			return "", err
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		return string(b), err
	}
	if _, err := read(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	return o, read
}

// waitCalls waits for the calls wg counts, and fails t if they are still
// blocked 10s after event.
func waitCalls(t *testing.T, wg *sync.WaitGroup, event string) {
	t.Helper()
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Fatalf("calls still blocked 10s after %s", event)
	}
}
