//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/parent"
)

// The operations below are what both harnesses time: each is one call of
// a loop, and does no more than it has to (no context that can be
// cancelled, which makes the opener's calls arrange to be woken).

// WriteTarget creates the file every figure opens, a small file named
// target in dir, and returns its path.
func WriteTarget(dir string) (string, error) {
	path := filepath.Join(dir, "target")
	if err := os.WriteFile(path, []byte("privsep benchmark target\n"), 0o644); err != nil {
		return "", fmt.Errorf("benchmark target: %w", err)
	}
	return path, nil
}

// DirectOpenClose opens and closes path in this process with the bare
// system calls: the floor.
func DirectOpenClose(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	return unix.Close(fd)
}

// DirectOsOpen opens and closes path as a Go program would without an
// opener. os.Open costs more than the system calls: it also asks fstat
// whether the file can use the poller.
func DirectOsOpen(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// OpenClose opens path read-only through o and closes it.
func OpenClose(o *parent.Opener, path string) error {
	f, err := o.Open(context.Background(), path, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

// Requests returns n requests to open path read-only, for OpenBatchClose.
func Requests(path string, n int) []parent.Request {
	reqs := make([]parent.Request, n)
	for i := range reqs {
		reqs[i] = parent.Request{Path: path, Flag: os.O_RDONLY}
	}
	return reqs
}

// OpenBatchClose opens reqs through o in one OpenBatch and closes every
// file it got. It returns the last request's error, if any failed.
func OpenBatchClose(o *parent.Opener, reqs []parent.Request) error {
	res, err := o.OpenBatch(context.Background(), reqs)
	if err != nil {
		return err
	}
	var failed error
	for _, r := range res {
		if r.Err != nil {
			failed = r.Err
			continue
		}
		r.File.Close()
	}
	return failed
}

// Concurrently calls op from callers goroutines at once, each calling it
// again as long as more says so, and returns the number of calls made. The
// first error stops them all and is returned. more is called from every
// goroutine: a count (an atomic counter below b.N) or a deadline (an
// atomic flag) serve.
func Concurrently(callers int, more func() bool, op func() error) (int64, error) {
	var (
		stop     atomic.Bool
		total    atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for range callers {
		wg.Go(func() {
			n := int64(0)
			for !stop.Load() && more() {
				if err := op(); err != nil {
					errOnce.Do(func() { firstErr = err })
					stop.Store(true)
					break
				}
				n++
			}
			total.Add(n)
		})
	}
	wg.Wait()
	return total.Load(), firstErr
}

// StartToFirstFD starts an opener whose only rule allows path, opens path
// through it, and closes the file and the opener, waiting for it to exit.
// It returns the time to the first descriptor and the time of the whole.
func StartToFirstFD(ctx context.Context, path string) (first, whole time.Duration, err error) {
	t := time.Now()
	o, err := parent.Start(ctx, parent.Config{Rules: []string{path}})
	if err != nil {
		return 0, 0, err
	}
	f, err := o.Open(context.Background(), path, os.O_RDONLY, 0)
	if err != nil {
		o.Close()
		return 0, 0, err
	}
	first = time.Since(t)
	f.Close()
	if err := o.Close(); err != nil {
		return 0, 0, fmt.Errorf("closing the opener: %w", err)
	}
	return first, time.Since(t), nil
}

// ExitAtOnceEnv, set to 1, makes the privsep binary exit at once
// (IsBareStart); privsep bench's BareStart sets it.
const ExitAtOnceEnv = "PRIVSEP_BENCH_EXIT_AT_ONCE"

// IsBareStart reports whether this process was started by
// BareStart(ExitAtOnceEnv). The privsep command line checks it first
// thing, right after child.Init, and exits with status 0, so that a bare
// start costs what an opener's start costs before the opener does
// anything.
func IsBareStart() bool {
	v := os.Getenv(ExitAtOnceEnv)
	return v == "1" || v == holdValue
}

// holdValue of ExitAtOnceEnv makes a bare start wait before it exits, for
// BareStartRSS to read its resident size.
const holdValue = "hold"

// FinishBareStart is what a bare start does before it exits: nothing
// for BareStart; for BareStartRSS it says so on standard output and waits
// for standard input to close, so that its parent can read its resident
// size while it is still alive.
func FinishBareStart() {
	if os.Getenv(ExitAtOnceEnv) == holdValue {
		var b [1]byte
		os.Stdout.Write([]byte{'.'})
		os.Stdin.Read(b[:])
	}
}

// ExitIfBareStart exits with status 0 if IsBareStart, for a TestMain.
func ExitIfBareStart() {
	if IsBareStart() {
		FinishBareStart()
		os.Exit(0)
	}
}

// BareStart re-executes the running binary as parent.Start does
// (/proc/self/exe), with env=1 as its only environment, and waits for it:
// the floor of starting an opener. env must make the binary exit as soon
// as it starts (ExitAtOnceEnv for privsep's).
func BareStart(env string) error {
	cmd := &exec.Cmd{
		Path: "/proc/self/exe",
		Args: []string{"privsep-bench-bare"},
		Env:  []string{env + "=1"},
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("re-executing /proc/self/exe: %w", err)
	}
	return nil
}

// BareStartRSS starts the running binary as BareStart does, and returns
// its resident size once it has done what a bare start does, right
// before it would exit: what starting this binary costs in memory before
// it does anything, the floor under an opener's RSS. (wait4's ru_maxrss
// cannot say: a child made with vfork, as os/exec makes them, reports the
// parent's peak from before its exec.)
func BareStartRSS(env string) (int64, error) {
	cmd := &exec.Cmd{
		Path: "/proc/self/exe",
		Args: []string{"privsep-bench-bare"},
		Env:  []string{env + "=" + holdValue},
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("re-executing /proc/self/exe: %w", err)
	}
	var b [1]byte
	_, rerr := io.ReadFull(out, b[:])
	rss, err := VmRSS(cmd.Process.Pid)
	in.Close()
	werr := cmd.Wait()
	switch {
	case rerr != nil:
		return 0, fmt.Errorf("re-executing /proc/self/exe: it did not say it was ready: %w", errors.Join(rerr, werr))
	case err != nil:
		return 0, err
	case werr != nil:
		return 0, fmt.Errorf("re-executing /proc/self/exe: %w", werr)
	}
	return rss, nil
}
