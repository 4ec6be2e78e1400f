//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/privsep-go/privsep/parent"
)

// The figures of Run, each measured once per round for about d.

func (r *runner) directOp() error   { return DirectOpenClose(r.path) }
func (r *runner) directOsOp() error { return DirectOsOpen(r.path) }
func (r *runner) openClose() error  { return OpenClose(r.op, r.path) }
func (r *runner) batchOp() error    { return OpenBatchClose(r.op, r.reqs) }
func bareStartOp() error            { return BareStart(ExitAtOnceEnv) }

// startOp starts an opener, receives one file, and closes both. It
// appends the time to the first descriptor to r.firstFD.
func (r *runner) startOp() error {
	first, _, err := StartToFirstFD(r.ctx, r.path)
	if err != nil {
		return err
	}
	r.firstFD = append(r.firstFD, float64(first.Nanoseconds()))
	return nil
}

// recordCPU notes the CPU time of both processes since m started, per
// unit, as a sample of figure key. A reading that failed is no sample.
func (r *runner) recordCPU(key string, m CPUMeter, units int) {
	if _, both, err := m.Used(); err == nil && units > 0 {
		r.rep.CPU[key] = append(r.rep.CPU[key], float64(both.Nanoseconds())/float64(units))
	}
}

// lastCPU is the sample recordCPU took last for key, for progress lines.
func (r *runner) lastCPU(key string) string {
	xs := r.rep.CPU[key]
	if len(xs) == 0 {
		return FormatNs(0, "ns")
	}
	return FormatNs(xs[len(xs)-1], "ns")
}

func (r *runner) direct(d time.Duration) (float64, string, error) {
	ns, n, err := TimeLoop(r.ctx, d, 1, r.directOp)
	return ns, fmt.Sprintf("%d opens", n), err
}

func (r *runner) directOs(d time.Duration) (float64, string, error) {
	ns, n, err := TimeLoop(r.ctx, d, 1, r.directOsOp)
	return ns, fmt.Sprintf("%d opens", n), err
}

// single is one caller, one request at a time; it also counts this
// process's allocations.
func (r *runner) single(d time.Duration) (float64, string, error) {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cpu := StartCPU(r.op.PID())
	ns, n, err := TimeLoop(r.ctx, d, 1, r.openClose)
	r.recordCPU("single", cpu, n)
	runtime.ReadMemStats(&m1)
	r.mallocs += m1.Mallocs - m0.Mallocs
	r.opens += uint64(n)
	return ns, fmt.Sprintf("%d opens, %s CPU each", n, r.lastCPU("single")), err
}

// concurrent has 16 goroutines open and close through the one opener for
// d, and returns the wall time per open, all callers together.
func (r *runner) concurrent(d time.Duration) (float64, string, error) {
	cpu := StartCPU(r.op.PID())
	// A flag, not ctx.Err, which takes a lock that 16 callers would
	// contend for between opens.
	var done atomic.Bool
	timer := time.AfterFunc(d, func() { done.Store(true) })
	defer timer.Stop()
	defer context.AfterFunc(r.ctx, func() { done.Store(true) })()
	// One open is let through after the deadline, so that a machine too
	// loaded to schedule a caller within d still yields a figure.
	var last atomic.Bool
	more := func() bool { return !done.Load() || last.CompareAndSwap(false, true) }
	start := time.Now()
	n, err := Concurrently(callers, more, r.openClose)
	el := time.Since(start)
	if err != nil {
		return 0, "", err
	}
	if err := r.ctx.Err(); err != nil {
		return 0, "", err
	}
	if n == 0 {
		return 0, "", errors.New("no open completed")
	}
	r.recordCPU("concurrent16", cpu, int(n))
	return float64(el.Nanoseconds()) / float64(n), fmt.Sprintf("%d opens, %s CPU each", n, r.lastCPU("concurrent16")), nil
}

func (r *runner) batch(d time.Duration) (float64, string, error) {
	cpu := StartCPU(r.op.PID())
	ns, n, err := TimeLoop(r.ctx, d, 1, r.batchOp)
	r.recordCPU("batch64", cpu, n*batchSize)
	return ns / batchSize, fmt.Sprintf("%d batches, %s CPU per fd", n, r.lastCPU("batch64")), err
}

// start times start to first descriptor: Start and one Open. The median
// including Close (the opener's exit and the wait for it, as in a bare
// re-exec) goes to the start_close figure.
func (r *runner) start(d time.Duration) (float64, string, error) {
	r.firstFD = r.firstFD[:0]
	withClose, n, err := TimeEach(r.ctx, d, 3, r.startOp)
	if err != nil {
		return 0, "", err
	}
	r.rep.Spread["start_close"] = append(r.rep.Spread["start_close"], withClose)
	return Median(r.firstFD), fmt.Sprintf("median of %d starts; %s with Close", n, FormatNs(withClose, "ns")), nil
}

func (r *runner) bareStart(d time.Duration) (float64, string, error) {
	ns, n, err := TimeEach(r.ctx, d, 3, bareStartOp)
	return ns, fmt.Sprintf("median of %d runs", n), err
}

// idleRSS starts a fresh opener, has it serve a few opens, lets it settle
// and reads its resident size, and what it is made of where the kernel
// says (smaps_rollup, Linux 4.14).
func (r *runner) idleRSS() (int64, error) {
	o, err := parent.Start(r.ctx, parent.Config{Rules: []string{r.path}})
	if err != nil {
		return 0, err
	}
	defer o.Close()
	for range 100 {
		if err := OpenClose(o, r.path); err != nil {
			return 0, err
		}
	}
	time.Sleep(min(r.slice/4, 200*time.Millisecond))
	if m, err := SmapsRollup(o.PID()); err == nil {
		r.rep.ChildMemory = &m
	}
	return VmRSS(o.PID())
}
