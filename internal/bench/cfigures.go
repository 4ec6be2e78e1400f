//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// cRun measures the C reference programs in Run's rounds. They run for a
// count of iterations, not a time: calibrate learns their speed, and each
// run after sizes its count from the one before.
type cRun struct {
	CRef
	// Nanoseconds per iteration, to size the iteration counts.
	perDirect, perSingle, perBatch float64
	childRSS                       int64 // of the forked C opener, bytes
}

// errStalled reports a C reference run that took far longer than it
// should have; its round goes without that figure.
var errStalled = errors.New("the program ran far longer than calibrated (a busy machine?)")

// calibrate runs each program briefly to learn its time per iteration.
func (c *cRun) calibrate(path string) error {
	var err error
	if c.perDirect, _, err = c.run(context.Background(), "c_direct", c.Direct, path, "2000"); err != nil {
		return err
	}
	if c.perSingle, _, err = c.run(context.Background(), "c_seqpacket_b1", c.Broker, "seq", "1", "200", path); err != nil {
		return err
	}
	if c.perBatch, _, err = c.run(context.Background(), "c_seqpacket_b64", c.Broker, "seq", "64", "20", path); err != nil {
		return err
	}
	return nil
}

// run runs prog and returns the ns per iteration of its RESULT line name.
func (c *cRun) run(ctx context.Context, name, prog string, args ...string) (float64, CResult, error) {
	res, err := RunC(ctx, prog, args...)
	if err != nil {
		return 0, res, err
	}
	ns, err := res.NsPerOp(name)
	return ns, res, err
}

// runFor is run for a run sized to take about d: one that takes much
// longer is killed and reported as errStalled.
func (c *cRun) runFor(d time.Duration, name, prog string, args ...string) (float64, CResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*d+time.Second)
	defer cancel()
	ns, res, err := c.run(ctx, name, prog, args...)
	if err != nil && ctx.Err() != nil {
		return 0, res, errStalled
	}
	return ns, res, err
}

// iterations is the count that makes a program with per ns per iteration
// run for about d, its own warm-up (a tenth more) included.
func iterations(d time.Duration, per float64) int64 {
	n := int64(float64(d.Nanoseconds()) / 1.1 / max(per, 1))
	return max(n, 10)
}

// sized runs prog for about d: its iteration count, n, comes from *per,
// the speed of the run before, which it updates. args gets n as a string.
func (c *cRun) sized(d time.Duration, per *float64, name, prog string, args func(n string) []string) (float64, int64, CResult, error) {
	n := iterations(d, *per)
	ns, res, err := c.runFor(d, name, prog, args(strconv.FormatInt(n, 10))...)
	if err != nil {
		return 0, 0, res, err
	}
	*per = ns
	return ns, n, res, nil
}

func (r *runner) cDirect(d time.Duration) (float64, string, error) {
	c := r.cref
	ns, n, _, err := c.sized(d, &c.perDirect, "c_direct", c.Direct, func(n string) []string { return []string{r.path, n} })
	if err != nil {
		return 0, "", err
	}
	return ns, fmt.Sprintf("%d opens", n), nil
}

func (r *runner) cSingle(d time.Duration) (float64, string, error) {
	c := r.cref
	ns, n, res, err := c.sized(d, &c.perSingle, "c_seqpacket_b1", c.Broker, func(n string) []string { return []string{"seq", "1", n, r.path} })
	if err != nil {
		return 0, "", err
	}
	if res.ChildRSS > 0 {
		c.childRSS = res.ChildRSS
	}
	cpu := res.CPUPerTrip(n)
	r.rep.CPU["c_single"] = append(r.rep.CPU["c_single"], cpu)
	return ns, fmt.Sprintf("%d round trips, %s CPU each", n, FormatNs(cpu, "ns")), nil
}

func (r *runner) cBatch(d time.Duration) (float64, string, error) {
	c := r.cref
	ns, n, res, err := c.sized(d, &c.perBatch, "c_seqpacket_b64", c.Broker, func(n string) []string { return []string{"seq", "64", n, r.path} })
	if err != nil {
		return 0, "", err
	}
	perFD := res.CPUPerTrip(n) / batchSize
	r.rep.CPU["c_batch64"] = append(r.rep.CPU["c_batch64"], perFD)
	return ns / batchSize, fmt.Sprintf("%d batches, %s CPU per fd", n, FormatNs(perFD, "ns")), nil
}
