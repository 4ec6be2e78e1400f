//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/privsep-go/privsep/parent"
)

// Options says how Run measures.
type Options struct {
	Duration time.Duration // per figure, all rounds together
	Rounds   int           // each figure is the median of its rounds
	RefDir   string        // the C reference sources; "" for none
	// Baselines adds the Go and Python baselines: the C reference's round
	// trip written as a raw Go loop (RunRawOpener) and in Python's
	// standard library (python3 from PATH, skipped without one).
	Baselines bool
	// Count is the number of operations each counted figure (system
	// calls, context switches) runs: 0 for DefaultCount, negative for
	// none.
	Count int
	// Sessions, if positive, adds the server-mode figure: that many
	// client sessions held at once (MeasureServerAnywhere).
	Sessions int
	// ServerChildArgs are the arguments that make this executable, run
	// with ServerClientsEnv set, reach RunServerClients, should the
	// clients have to live in a child (none for privsep itself).
	ServerChildArgs []string
	Log             io.Writer // progress lines, "privsep bench: ..."
}

const (
	callers   = 16 // the concurrent figure's goroutines
	batchSize = 64 // the batch figure's requests
)

// runner holds what a run needs.
type runner struct {
	ctx    context.Context // noticed between calls: the calls get none
	slice  time.Duration   // time per figure per round
	rounds int
	log    io.Writer
	rep    *Report

	path string           // the file every figure opens
	op   *parent.Opener   // the opener of the steady-state figures
	reqs []parent.Request // a batch of batchSize opens of path
	cref *cRun            // nil without Options.RefDir
	raw  *RawLoop         // nil without Options.Baselines
	py   *python          // nil without Options.Baselines or python3

	firstFD []float64 // start to first fd of each start in a round

	// Over the 1-caller loops, for the parent's allocations per open.
	mallocs, opens uint64
}

// figure is one measured quantity: run measures it once for about d and
// returns the figure (ns per unit) and a short note for the progress line.
type figure struct {
	key  string
	name string
	unit string
	run  func(d time.Duration) (float64, string, error)
}

// Run measures what the opener costs, in interleaved rounds, and returns
// the report. The opener is this binary, re-executed: its main must call
// child.Init, then exit at once when IsBareStart. ctx interrupts the run between calls.
func Run(ctx context.Context, opt Options) (*Report, error) {
	if opt.Duration <= 0 || opt.Rounds < 1 {
		return nil, fmt.Errorf("bench: a duration of %v in %d rounds: want both positive", opt.Duration, opt.Rounds)
	}
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	start := time.Now()
	r := &runner{
		ctx:    ctx,
		slice:  opt.Duration / time.Duration(opt.Rounds),
		rounds: opt.Rounds,
		log:    opt.Log,
		rep: &Report{
			Rounds:     opt.Rounds,
			DurationNs: opt.Duration.Nanoseconds(),
			NumCPU:     runtime.NumCPU(),
			GOMAXPROCS: runtime.GOMAXPROCS(0),
			LoadAvg:    LoadAvg(),
			GoVersion:  runtime.Version(),
			Spread:     make(map[string][]float64),
			CPU:        make(map[string][]float64),
		},
	}
	rep := r.rep
	r.progress("%d round(s) of %v per figure; %d CPU(s), GOMAXPROCS %d, load %.2f %.2f %.2f",
		r.rounds, r.slice, rep.NumCPU, rep.GOMAXPROCS, rep.LoadAvg[0], rep.LoadAvg[1], rep.LoadAvg[2])

	dir, err := os.MkdirTemp("", "privsep-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := r.setUp(dir, opt.RefDir); err != nil {
		return nil, err
	}
	defer func() {
		if r.op != nil {
			r.op.Close()
		}
		if r.raw != nil {
			r.raw.Close()
		}
	}()
	if opt.Baselines {
		if r.raw, err = StartRawLoop(r.path); err != nil {
			return nil, err
		}
		if r.py = findPython(ctx); r.py == nil {
			r.progress("no python3 with socket.send_fds on PATH: the Python baseline is skipped")
		}
	}
	if err := r.measure(start); err != nil {
		return nil, err
	}
	rep.summarize()
	if opt.Count >= 0 {
		n := opt.Count
		if n == 0 {
			n = DefaultCount
		}
		if err := r.counts(n); err != nil {
			return nil, err
		}
	}
	if r.opens > 0 {
		rep.AllocsPerOpen = float64(r.mallocs) / float64(r.opens)
	}
	if r.cref != nil {
		rep.summarizeC(r.cref.childRSS)
	}
	rep.summarizeBaselines()
	err = r.op.Close()
	r.op = nil
	if err != nil {
		return nil, fmt.Errorf("closing the opener: %w", err)
	}
	if r.raw != nil {
		err = r.raw.Close()
		r.raw = nil
		if err != nil {
			return nil, err
		}
	}
	if rep.ChildRSSBytes, err = r.idleRSS(); err != nil {
		return nil, fmt.Errorf("idle opener RSS: %w", err)
	}
	r.progress("idle opener RSS: %.2f MiB", float64(rep.ChildRSSBytes)/(1<<20))
	if rep.BareStartRSSBytes, err = BareStartRSS(ExitAtOnceEnv); err != nil {
		return nil, fmt.Errorf("bare re-exec RSS: %w", err)
	}
	r.progress("bare re-exec of this binary, RSS at exit: %.2f MiB", float64(rep.BareStartRSSBytes)/(1<<20))
	if opt.Sessions > 0 {
		r.progress("server mode: %d sessions", opt.Sessions)
		srv, err := MeasureServerAnywhere(ctx, ServerOptions{Sessions: opt.Sessions, Log: opt.Log}, opt.ServerChildArgs...)
		var lim *FDLimitError
		switch {
		case errors.As(err, &lim):
			rep.ServerNote = "not measured: " + err.Error()
		case err != nil:
			return nil, fmt.Errorf("server mode: %w", err)
		}
		rep.Server = srv
	}
	rep.ElapsedNs = time.Since(start).Nanoseconds()
	return rep, nil
}

// setUp writes the target in dir, builds the C reference there if refDir
// is set, and starts the opener.
func (r *runner) setUp(dir, refDir string) error {
	var err error
	if r.path, err = WriteTarget(dir); err != nil {
		return err
	}
	r.reqs = Requests(r.path, batchSize)
	if refDir != "" {
		r.progress("building the C reference from %s", refDir)
		out := filepath.Join(dir, "cref")
		if err := os.Mkdir(out, 0o755); err != nil {
			return err
		}
		c, err := BuildCRef(refDir, out)
		if err != nil {
			return fmt.Errorf("--ref-dir: %w", err)
		}
		r.cref = &cRun{CRef: c}
	}
	if r.op, err = parent.Start(r.ctx, parent.Config{Rules: []string{r.path}}); err != nil {
		return err
	}
	r.rep.Openat2 = r.op.Openat2()
	return nil
}

// figures lists what each round measures, in order.
func (r *runner) figures() []figure {
	fs := []figure{
		{"direct", "direct open+close", "ns/op", r.direct},
		{"direct_os", "direct os.Open+Close", "ns/op", r.directOs},
		{"c_direct", "C direct open+close", "ns/op", r.cDirect},
		{"single", "1 caller", "ns/op", r.single},
		{"c_single", "C opener, 1 fd per round trip", "ns/op", r.cSingle},
		{"raw_go", "raw Go loop, 1 fd per round trip", "ns/op", r.rawSingle},
		{"python_single", "Python stdlib opener, 1 fd per round trip", "ns/op", r.pythonSingle},
		{"concurrent16", "16 callers, aggregate", "ns/op", r.concurrent},
		{"batch64", "batch of 64, per fd", "ns/fd", r.batch},
		{"c_batch64", "C opener, 64 fds per request, per fd", "ns/fd", r.cBatch},
		{"start", "start to first fd", "ns", r.start},
		{"bare_start", "bare re-exec of this binary", "ns", r.bareStart},
	}
	return slices.DeleteFunc(fs, func(f figure) bool {
		return strings.HasPrefix(f.key, "c_") && r.cref == nil || f.key == "raw_go" && r.raw == nil || f.key == "python_single" && r.py == nil
	})
}

// measure warms up and runs the rounds, each figure once per round.
func (r *runner) measure(start time.Time) error {
	figures := r.figures()
	r.progress("warming up")
	if err := r.warmUp(); err != nil {
		return err
	}
	clear(r.rep.CPU) // the warm-up's figures are not samples
	// A machine much busier than usual makes everything slower, and the C
	// programs run for a count of iterations rather than a time: past the
	// budget, stop after the round in progress.
	budget := time.Duration(float64(r.slice)*float64(r.rounds*len(figures))*1.5) + 5*time.Second
	roundsStart := time.Now()
	for n := 1; n <= r.rounds; n++ {
		for _, f := range figures {
			v, note, err := f.run(r.slice)
			if errors.Is(err, errStalled) {
				r.progress("round %d/%d: %-38s skipped: %v", n, r.rounds, f.name, err)
				continue
			}
			if err != nil {
				return fmt.Errorf("%s: %w", f.name, err)
			}
			r.rep.Spread[f.key] = append(r.rep.Spread[f.key], v)
			r.progress("round %d/%d: %-38s %s  (%s)", n, r.rounds, f.name, FormatNs(v, f.unit), note)
		}
		r.rep.Rounds = n
		if el := time.Since(start); n < r.rounds && el+time.Since(roundsStart)/time.Duration(n) > budget {
			r.progress("stopping after %d round(s): the machine is slower than expected (%v so far)", n, el.Round(time.Second))
			break
		}
	}
	return nil
}

// warmUp runs every figure briefly, outside the measurements, so that the
// first round does not pay for cold caches, page faults and thread starts.
func (r *runner) warmUp() error {
	d := min(r.slice/10, 50*time.Millisecond)
	if _, _, err := TimeLoop(r.ctx, d, 100, r.directOp); err != nil {
		return err
	}
	if _, _, err := TimeLoop(r.ctx, d, 100, r.openClose); err != nil {
		return err
	}
	if _, _, err := r.concurrent(d); err != nil {
		return err
	}
	if _, _, err := TimeLoop(r.ctx, d, 2, r.batchOp); err != nil {
		return err
	}
	if _, _, err := TimeLoop(r.ctx, 0, 1, r.startOp); err != nil {
		return err
	}
	if _, _, err := TimeLoop(r.ctx, 0, 1, bareStartOp); err != nil {
		return err
	}
	if r.raw != nil {
		if _, _, err := TimeLoop(r.ctx, d, 100, r.raw.OpenClose); err != nil {
			return err
		}
	}
	if r.cref != nil {
		return r.cref.calibrate(r.path)
	}
	return nil
}

func (r *runner) progress(format string, args ...any) {
	fmt.Fprintf(r.log, "privsep bench: "+format+"\n", args...)
}

// FormatNs formats a figure in ns for people, in µs or ms; unit is
// "ns/op", "ns/fd" or "ns", and its tail follows the figure.
func FormatNs(ns float64, unit string) string {
	per := strings.TrimPrefix(unit, "ns")
	if ns >= 1e6 {
		return fmt.Sprintf("%.2f ms%s", ns/1e6, per)
	}
	return fmt.Sprintf("%.2f µs%s", ns/1e3, per)
}
