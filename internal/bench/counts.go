//go:build linux

package bench

import (
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"sync/atomic"
)

// The counted figures: system calls and context switches per operation of
// both processes, over a fixed number of operations after the timed rounds
// (a counter costs a little on every call, so no timed figure runs under
// one). The C reference runs twice, for n round trips and for one, and the
// difference, per round trip, leaves out its start and exit.

// DefaultCount is the number of operations each counted figure runs.
const DefaultCount = 20000

// counts takes the counted figures. A machine where nothing can be
// counted (no tracefs, no permission) gets a note instead; an operation
// that fails is an error.
func (r *runner) counts(n int) error {
	pids := []int{0, r.op.PID()}
	probe, err := countProcs(pids...)
	if err != nil {
		r.rep.CountNote = "not counted: " + err.Error()
		r.progress("system calls and context switches %s", r.rep.CountNote)
		return nil
	}
	probe.close()
	rep := r.rep
	if rep.SingleCounts, err = r.count("1 caller", pids, n, n, repeat(n, r.openClose)); err != nil {
		return err
	}
	batches := max(n/batchSize, 1)
	if rep.Batch64Counts, err = r.count("batch of 64, per fd", pids, batches*batchSize, batches, repeat(batches, r.batchOp)); err != nil {
		return err
	}
	if rep.Concurrent16Counts, err = r.count("16 callers", pids, n, n, func() error {
		var next atomic.Int64
		_, err := Concurrently(callers, func() bool { return next.Add(1) <= int64(n) }, r.openClose)
		return err
	}); err != nil {
		return err
	}
	if r.cref != nil {
		if rep.CSingleCounts, err = r.countC("C opener, 1 fd per round trip", 1, n); err != nil {
			return err
		}
		if rep.CBatch64Counts, err = r.countC("C opener, 64 fds per request, per fd", batchSize, batches); err != nil {
			return err
		}
	}
	return nil
}

// count runs do, which makes units operations (ops messages), under a
// counter on pids and returns the counts per unit.
func (r *runner) count(name string, pids []int, units, ops int, do func() error) (*PerOp, error) {
	if err := r.ctx.Err(); err != nil {
		return nil, err
	}
	per, err := countOps(pids, 1, do)
	if err != nil {
		return nil, fmt.Errorf("counting %s: %w", name, err)
	}
	per.Syscalls /= float64(units)
	per.Switches /= float64(units)
	r.progress("counted %-40s %6.2f system calls, %5.2f context switches per %s (%d)", name, per.Syscalls, per.Switches, unitName(units, ops), units)
	return &per, nil
}

func unitName(units, ops int) string {
	if units != ops {
		return "fd"
	}
	return "op"
}

// countC counts the C broker for trips round trips of size fds each and
// for one, and returns the difference per fd.
func (r *runner) countC(name string, size, trips int) (*PerOp, error) {
	if err := r.ctx.Err(); err != nil {
		return nil, err
	}
	run := func(n int) (Events, error) {
		cmd := exec.CommandContext(r.ctx, r.cref.Broker, "seq", strconv.Itoa(size), strconv.Itoa(n), r.path)
		e, err := countCommand(cmd)
		if err != nil {
			return Events{}, fmt.Errorf("counting %s: %w", name, err)
		}
		return e, nil
	}
	many, err := run(trips)
	if err != nil {
		return nil, err
	}
	one, err := run(1)
	if err != nil {
		return nil, err
	}
	// broker_seqpacket makes n/10+1 more round trips to warm up.
	extra := float64((trips + trips/10 + 1) - (1 + 0 + 1))
	if extra <= 0 || many.Syscalls < one.Syscalls {
		return nil, errors.New("counting " + name + ": the longer run counted fewer system calls than the shorter one")
	}
	// Context switches depend on timing: a short run can have more.
	many.Switches = max(many.Switches, one.Switches)
	per := many.sub(one).per(extra * float64(size))
	r.progress("counted %-40s %6.2f system calls, %5.2f context switches per %s", name, per.Syscalls, per.Switches, unitName(size, 1))
	return &per, nil
}
