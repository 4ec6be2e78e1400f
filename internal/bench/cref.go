//go:build linux

package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The C reference programs of shared/bench (see its README.md): direct.c,
// the floor, and broker_seqpacket.c, a minimal C opener. Each prints
// "RESULT NAME NS/OP OPS/S [NS/FD]" lines on standard output; the broker
// also prints "RSS c_child KB" on standard error.

// ErrNoCompiler is returned by BuildCRef when gcc is not on PATH.
var ErrNoCompiler = errors.New("gcc is not on PATH")

// CRef holds the paths of the built C reference programs.
type CRef struct {
	Direct string // direct PATH ITERATIONS
	Broker string // broker_seqpacket seq|stream N ITERATIONS PATH
}

// BuildCRef builds the programs of the source directory src with gcc -O2
// into the directory out, which must exist. A missing source is an error
// that matches fs.ErrNotExist; no gcc is ErrNoCompiler.
func BuildCRef(src, out string) (CRef, error) {
	for _, name := range []string{"direct.c", "broker_seqpacket.c"} {
		if _, err := os.Stat(filepath.Join(src, name)); err != nil {
			return CRef{}, err // names the file and why
		}
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return CRef{}, ErrNoCompiler
	}
	c := CRef{Direct: filepath.Join(out, "direct"), Broker: filepath.Join(out, "broker_seqpacket")}
	for _, prog := range []string{c.Direct, c.Broker} {
		name := filepath.Base(prog) + ".c"
		cmd := exec.Command(gcc, "-O2", "-o", prog, filepath.Join(src, name))
		if msg, err := cmd.CombinedOutput(); err != nil {
			return CRef{}, fmt.Errorf("gcc %s: %v\n%s", name, err, msg)
		}
	}
	return c, nil
}

// CResult is what one run of a C reference program reported.
type CResult struct {
	Figures  map[string][]float64 // by RESULT name: ns/op, ops/s[, ns/fd]
	ChildRSS int64                // bytes, from the RSS line; 0 without one
	// CPU is the user and system time of the program and of the children
	// it waited for (wait4 counts them): the forked C opener is included.
	CPU time.Duration
}

// RunC runs the C reference program prog with args and parses what it
// printed. ctx kills it.
func RunC(ctx context.Context, prog string, args ...string) (CResult, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	what := filepath.Base(prog) + " " + strings.Join(args, " ")
	if err := cmd.Run(); err != nil {
		return CResult{}, fmt.Errorf("%s: %v\n%s", what, err, stderr.Bytes())
	}
	res, err := parseCOutput(stdout.Bytes(), stderr.Bytes())
	if err != nil {
		return CResult{}, fmt.Errorf("%s: %w", what, err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return res, nil
}

// parseCOutput reads the RESULT lines of stdout and the RSS line of
// stderr. A RESULT line that does not parse is an error, and so is none.
func parseCOutput(stdout, stderr []byte) (CResult, error) {
	res := CResult{Figures: make(map[string][]float64)}
	for line := range strings.Lines(string(stdout)) {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "RESULT" {
			continue
		}
		v := make([]float64, 0, len(f)-2)
		for _, s := range f[2:] {
			x, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return CResult{}, fmt.Errorf("bad RESULT line %q", strings.TrimSpace(line))
			}
			v = append(v, x)
		}
		res.Figures[f[1]] = v
	}
	if len(res.Figures) == 0 {
		return CResult{}, fmt.Errorf("no RESULT line in:\n%s%s", stdout, stderr)
	}
	for line := range strings.Lines(string(stderr)) {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "RSS" {
			if kb, err := strconv.ParseInt(f[2], 10, 64); err == nil {
				res.ChildRSS = kb << 10
			}
		}
	}
	return res, nil
}

// NsPerOp returns the first figure of the RESULT line name: ns per
// iteration.
func (r CResult) NsPerOp(name string) (float64, error) {
	if v := r.Figures[name]; len(v) > 0 && v[0] > 0 {
		return v[0], nil
	}
	return 0, fmt.Errorf("no RESULT %s figure in %v", name, r.Figures)
}

// CPUPerTrip is the CPU time in ns per round trip of a broker_seqpacket
// run of n round trips: the program makes n/10+1 more to warm up, and its
// CPU time covers them all (and its start).
func (r CResult) CPUPerTrip(n int64) float64 {
	return float64(r.CPU.Nanoseconds()) / float64(n+n/10+1)
}
