//go:build linux

package parent_test

// Benchmarks of the opener against its floors, all measured in one run so
// that they can be compared as ratios (scripts/bench.sh prints them):
//
//   - DirectOpenClose, DirectOsOpen: open+close in this process, no IPC.
//   - OpenSingle, OpenBatch64, OpenConcurrent16: the real opener, started
//     once per benchmark outside the timer.
//   - StartToFirstFD, BareReexec: starting an opener, against starting this
//     binary and letting it exit at once.
//   - CReference: the C programs of ../../shared/bench, built with gcc and
//     run with an iteration count derived from b.N; their own figures are
//     reported as c-* metrics.
//   - IdleChildRSS: the resident size of an idle opener.
//   - OpenBatch253, OpenBatch1000: a full message, and a batch that
//     OpenBatch splits into several.
//   - ChildAllocs: heap allocations in the opener per request, read from
//     the opener's own runtime statistics (see childStats).
//
// Every benchmark opens the same kind of file: a small file in a fresh
// temporary directory, allowed by an exact rule. The operations timed, the
// readings of /proc and the C reference's build and output are those of
// internal/bench, which privsep bench uses too; the loops are testing's.

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/privsep-go/privsep/internal/bench"
	"github.com/privsep-go/privsep/parent"
)

// benchTarget creates a small file to open and returns its path.
func benchTarget(b *testing.B) string {
	b.Helper()
	p, err := bench.WriteTarget(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// startOpener starts an opener whose only rule allows path, checks that it
// can open it, and registers a cleanup that closes it if the benchmark did
// not (closeOpener).
func startOpener(b *testing.B, path string) *parent.Opener {
	b.Helper()
	o, err := parent.Start(context.Background(), parent.Config{Rules: []string{path}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = o.Close() })
	if err := bench.OpenClose(o, path); err != nil {
		b.Fatal(err)
	}
	return o
}

// closeOpener closes o with the timer stopped and fails the benchmark if the
// opener did not exit cleanly.
func closeOpener(b *testing.B, o *parent.Opener) {
	b.Helper()
	b.StopTimer()
	if err := o.Close(); err != nil {
		b.Fatalf("closing the opener: %v", err)
	}
}

// BenchmarkDirectOpenClose: unix.Open+Close in this process, the floor.
func BenchmarkDirectOpenClose(b *testing.B) { benchDirect(b, bench.DirectOpenClose) }

// BenchmarkDirectOsOpen: os.Open+Close, which returns an *os.File as the
// opener does (and adds an fstat).
func BenchmarkDirectOsOpen(b *testing.B) { benchDirect(b, bench.DirectOsOpen) }

func benchDirect(b *testing.B, openClose func(path string) error) {
	path := benchTarget(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := openClose(path); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenSingle: one caller, one request at a time.
func BenchmarkOpenSingle(b *testing.B) {
	path := benchTarget(b)
	o := startOpener(b, path)
	b.ReportAllocs()
	cpu := bench.StartCPU(o.PID())
	for b.Loop() {
		if err := bench.OpenClose(o, path); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu, 1)
	closeOpener(b, o)
}

// BenchmarkOpenBatch64: one OpenBatch of 64 requests per op; ns/fd is the
// cost per file.
func BenchmarkOpenBatch64(b *testing.B) { benchBatch(b, 64) }

// BenchmarkOpenBatch253: a batch that fills one message (protocol.MaxBatch).
func BenchmarkOpenBatch253(b *testing.B) { benchBatch(b, 253) }

// BenchmarkOpenBatch1000: a batch that OpenBatch splits into four messages.
func BenchmarkOpenBatch1000(b *testing.B) { benchBatch(b, 1000) }

func benchBatch(b *testing.B, n int) {
	path := benchTarget(b)
	o := startOpener(b, path)
	reqs := bench.Requests(path, n)
	b.ReportAllocs()
	cpu := bench.StartCPU(o.PID())
	for b.Loop() {
		if err := bench.OpenBatchClose(o, reqs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/fd")
	reportCPU(b, cpu, n)
	closeOpener(b, o)
}

// BenchmarkOpenConcurrent16: 16 goroutines share one opener and do b.N
// opens between them; ns/op is the aggregate (wall time / b.N), whatever
// GOMAXPROCS is.
func BenchmarkOpenConcurrent16(b *testing.B) {
	const callers = 16
	path := benchTarget(b)
	o := startOpener(b, path)
	var next atomic.Int64
	b.ReportAllocs()
	cpu := bench.StartCPU(o.PID())
	b.ResetTimer()
	_, err := bench.Concurrently(callers,
		func() bool { return next.Add(1) <= int64(b.N) },
		func() error { return bench.OpenClose(o, path) })
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	reportCPU(b, cpu, 1)
	closeOpener(b, o)
}

// BenchmarkStartToFirstFD: start an opener, receive one file, close both.
// Besides the mean (ns/op) it reports the median (median-ns), which a few
// starts stalled by a busy machine do not move, and the median time to the
// first file alone, without closing the opener and waiting for it to exit
// (first-fd-median-ns).
func BenchmarkStartToFirstFD(b *testing.B) {
	path := benchTarget(b)
	ctx := context.Background()
	b.ReportAllocs()
	var times, first []float64
	for b.Loop() {
		f, whole, err := bench.StartToFirstFD(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		first = append(first, float64(f.Nanoseconds()))
		times = append(times, float64(whole.Nanoseconds()))
	}
	b.ReportMetric(bench.Median(times), "median-ns")
	b.ReportMetric(bench.Median(first), "first-fd-median-ns")
}

// BenchmarkBareReexec is the floor for StartToFirstFD: start this test
// binary the way Start does (/proc/self/exe) and wait for it; TestMain makes
// it exit before it does anything else. median-ns is the median start.
func BenchmarkBareReexec(b *testing.B) {
	b.ReportAllocs()
	var times []float64
	for b.Loop() {
		t := time.Now()
		if err := bench.BareStart(exitAtOnceEnv); err != nil {
			b.Fatal(err)
		}
		times = append(times, float64(time.Since(t).Nanoseconds()))
	}
	b.ReportMetric(bench.Median(times), "median-ns")
}

// BenchmarkIdleChildRSS starts an opener, has it open one file, lets it
// settle and reports its VmRSS as rss-bytes. The timed operation is one
// read of /proc/PID/status; the metric is the last value read.
func BenchmarkIdleChildRSS(b *testing.B) {
	path := benchTarget(b)
	o := startOpener(b, path)
	time.Sleep(50 * time.Millisecond)
	var rss int64
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if rss, err = bench.VmRSS(o.PID()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rss), "rss-bytes")
	closeOpener(b, o)
}

// childStatsEnv, in an opener started by startStatsOpener, names a
// directory where the opener writes its heap allocation count (the Mallocs
// of runtime.MemStats) each time it gets SIGUSR1. The opener is this test
// binary; init starts the handler before TestMain makes it the opener.
const childStatsEnv = "PRIVSEP_BENCH_CHILD_STATS"

func init() {
	if dir := os.Getenv(childStatsEnv); dir != "" {
		go serveChildStats(dir)
	}
}

// serveChildStats runs in the opener: on SIGUSR1 it writes Mallocs to
// DIR/mallocs (through a rename, so that the reader never sees half of it).
// What it allocates to do so comes after the reading and is the same every
// time; childAllocs subtracts it.
func serveChildStats(dir string) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	var ms runtime.MemStats
	for range sig {
		runtime.ReadMemStats(&ms)
		tmp := filepath.Join(dir, "mallocs.tmp")
		if os.WriteFile(tmp, strconv.AppendUint(nil, ms.Mallocs, 10), 0o644) == nil {
			os.Rename(tmp, filepath.Join(dir, "mallocs"))
		}
	}
}

// statsOpener is an opener that reports its allocation count.
type statsOpener struct {
	*parent.Opener
	dir string
}

// startStatsOpener starts an opener, allowing path, that serves
// childStats: the executable is a shell script that sets childStatsEnv and
// execs this test binary (same process, same parent, same socket).
func startStatsOpener(b *testing.B, path string) statsOpener {
	b.Helper()
	self, err := os.Executable()
	if err != nil {
		b.Skipf("cannot find the test binary: %v", err)
	}
	if _, err := os.Stat("/bin/sh"); err != nil {
		b.Skip("no /bin/sh to start the opener with its statistics on")
	}
	dir := b.TempDir()
	if strings.ContainsRune(dir+self, '\'') {
		b.Skip("a quote in the test binary's path or the temporary directory")
	}
	script := filepath.Join(dir, "opener.sh")
	text := "#!/bin/sh\nexport " + childStatsEnv + "='" + dir + "'\nexec '" + self + "' \"$@\"\n"
	if err := os.WriteFile(script, []byte(text), 0o755); err != nil {
		b.Fatal(err)
	}
	o, err := parent.Start(context.Background(), parent.Config{Rules: []string{path}, Executable: script})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = o.Close() })
	return statsOpener{o, dir}
}

// mallocs asks the opener for its allocation count, with the timer stopped.
func (o statsOpener) mallocs(b *testing.B) uint64 {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()
	out := filepath.Join(o.dir, "mallocs")
	os.Remove(out)
	if err := syscall.Kill(o.PID(), syscall.SIGUSR1); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		data, err := os.ReadFile(out)
		if err == nil {
			n, err := strconv.ParseUint(string(data), 10, 64)
			if err != nil {
				b.Fatalf("opener statistics: %v", err)
			}
			return n
		}
		if time.Now().After(deadline) {
			b.Fatal("the opener did not report its statistics within 5s")
		}
	}
}

// BenchmarkChildAllocs reports the opener's heap allocations per request
// (child-allocs/op) after a warm-up, in its steady state: one caller, a
// batch of 64 (also per file, child-allocs/fd) and 16 concurrent callers
// (whose opens the parent coalesces into batches). The figure should be 0:
// the descriptor it opens is all a request costs the opener.
func BenchmarkChildAllocs(b *testing.B) {
	path := benchTarget(b)
	open1 := func(o statsOpener) error { return bench.OpenClose(o.Opener, path) }
	reqs := bench.Requests(path, 64)
	batch := func(o statsOpener) error { return bench.OpenBatchClose(o.Opener, reqs) }
	// measure runs warm-up and then b.N calls of run (the loop is run's
	// own, so that the concurrent case can share it out), and reports the
	// opener's allocations per call, less those of the statistics
	// themselves.
	measure := func(b *testing.B, perOp int, run func(o statsOpener, n int) error) {
		o := startStatsOpener(b, path)
		if err := run(o, 200); err != nil {
			b.Fatal(err)
		}
		before := o.mallocs(b)
		b.ResetTimer()
		if err := run(o, b.N); err != nil {
			b.Fatal(err)
		}
		after := o.mallocs(b)
		overhead := o.mallocs(b) - after
		b.StopTimer()
		allocs := float64(after-before) - float64(overhead)
		b.ReportMetric(max(allocs, 0)/float64(b.N), "child-allocs/op")
		if perOp > 1 {
			b.ReportMetric(max(allocs, 0)/float64(b.N)/float64(perOp), "child-allocs/fd")
		}
		if err := o.Close(); err != nil {
			b.Fatalf("closing the opener: %v", err)
		}
	}
	b.Run("single", func(b *testing.B) {
		measure(b, 1, func(o statsOpener, n int) error {
			for range n {
				if err := open1(o); err != nil {
					return err
				}
			}
			return nil
		})
	})
	b.Run("batch64", func(b *testing.B) {
		measure(b, len(reqs), func(o statsOpener, n int) error {
			for range n {
				if err := batch(o); err != nil {
					return err
				}
			}
			return nil
		})
	})
	b.Run("concurrent16", func(b *testing.B) {
		measure(b, 1, func(o statsOpener, n int) error {
			var next atomic.Int64
			_, err := bench.Concurrently(16,
				func() bool { return next.Add(1) <= int64(n) },
				func() error { return open1(o) })
			return err
		})
	})
}

// reportCPU reports the CPU time used since m started per op (cpu-ns/op)
// and, when an op opens perOp files, per file (cpu-ns/fd): both processes
// together, and the parent alone (parent-cpu-ns/op).
func reportCPU(b *testing.B, m bench.CPUMeter, perOp int) {
	b.Helper()
	if b.N == 0 {
		return
	}
	self, both, err := m.Used()
	if err != nil {
		b.Logf("no CPU figures: %v", err)
		return
	}
	total := float64(both.Nanoseconds())
	b.ReportMetric(total/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(self.Nanoseconds())/float64(b.N), "parent-cpu-ns/op")
	if perOp > 1 {
		b.ReportMetric(total/float64(b.N)/float64(perOp), "cpu-ns/fd")
	}
}

// cRefDir locates the C reference programs: $PRIVSEP_BENCH_REF_DIR, else
// ../../shared/bench relative to this package.
func cRefDir() string {
	if d := os.Getenv("PRIVSEP_BENCH_REF_DIR"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "shared", "bench")
}

// BenchmarkCReference runs the C reference programs (direct.c and
// broker_seqpacket.c) with b.N iterations and reports their own figures:
// c-ns/op, c-ns/fd, and c-child-rss-bytes for the forked C opener.
// The standard ns/op of these sub-benchmarks is the harness's wall time per
// iteration, process start and the programs' warm-up included; use c-ns/op.
func BenchmarkCReference(b *testing.B) {
	// Built once per run of this function; the sub-benchmarks are the ones
	// called again with growing b.N.
	c, err := bench.BuildCRef(cRefDir(), b.TempDir())
	switch {
	case errors.Is(err, bench.ErrNoCompiler):
		b.Skip("gcc is not on PATH; skipping the C reference")
	case errors.Is(err, fs.ErrNotExist):
		b.Skipf("C reference sources not found (%v); set PRIVSEP_BENCH_REF_DIR to the shared/bench directory", err)
	case err != nil:
		b.Fatal(err)
	}
	path := benchTarget(b)

	b.Run("direct", func(b *testing.B) {
		res := runCRef(b, c.Direct, path, strconv.Itoa(b.N))
		d, g := res.Figures["c_direct"], res.Figures["c_getppid"]
		if len(d) < 1 || len(g) < 1 {
			b.Fatalf("direct printed no c_direct or c_getppid figure: %v", res.Figures)
		}
		b.ReportMetric(d[0], "c-ns/op")
		b.ReportMetric(g[0], "c-getppid-ns")
	})
	for _, n := range []int{1, 64} {
		b.Run("b"+strconv.Itoa(n), func(b *testing.B) {
			res := runCRef(b, c.Broker, "seq", strconv.Itoa(n), strconv.Itoa(b.N), path)
			r := res.Figures["c_seqpacket_b"+strconv.Itoa(n)]
			if len(r) < 3 {
				b.Fatalf("broker_seqpacket printed no ns/fd figure: %v", r)
			}
			b.ReportMetric(r[0], "c-ns/op")
			b.ReportMetric(r[2], "c-ns/fd")
			if res.ChildRSS > 0 {
				b.ReportMetric(float64(res.ChildRSS), "c-child-rss-bytes")
			}
			if res.CPU > 0 {
				b.ReportMetric(res.CPUPerTrip(int64(b.N)), "c-cpu-ns/op")
				b.ReportMetric(res.CPUPerTrip(int64(b.N))/float64(n), "c-cpu-ns/fd")
			}
		})
	}
}

// runCRef runs a C reference program, with the timer running, and fails
// the benchmark if it fails or prints no result.
func runCRef(b *testing.B, prog string, args ...string) bench.CResult {
	b.Helper()
	b.ReportAllocs()
	res, err := bench.RunC(context.Background(), prog, args...)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	return res
}
