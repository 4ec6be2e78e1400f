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
// temporary directory, allowed by an exact rule.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/parent"
)

// benchTarget creates a small file to open and returns its path.
func benchTarget(b *testing.B) string {
	b.Helper()
	p := filepath.Join(b.TempDir(), "target")
	if err := os.WriteFile(p, []byte("privsep benchmark target\n"), 0o644); err != nil {
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
	f, err := o.Open(context.Background(), path, os.O_RDONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	f.Close()
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

func BenchmarkDirectOpenClose(b *testing.B) {
	path := benchTarget(b)
	b.ReportAllocs()
	for b.Loop() {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		unix.Close(fd)
	}
}

func BenchmarkDirectOsOpen(b *testing.B) {
	path := benchTarget(b)
	b.ReportAllocs()
	for b.Loop() {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

// BenchmarkOpenSingle: one caller, one request at a time.
func BenchmarkOpenSingle(b *testing.B) {
	path := benchTarget(b)
	o := startOpener(b, path)
	ctx := context.Background()
	b.ReportAllocs()
	cpu := startCPU(o.PID())
	for b.Loop() {
		f, err := o.Open(ctx, path, os.O_RDONLY, 0)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	cpu.report(b, 1)
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
	ctx := context.Background()
	reqs := make([]parent.Request, n)
	for i := range reqs {
		reqs[i] = parent.Request{Path: path, Flag: os.O_RDONLY}
	}
	b.ReportAllocs()
	cpu := startCPU(o.PID())
	for b.Loop() {
		res, err := o.OpenBatch(ctx, reqs)
		if err != nil {
			b.Fatal(err)
		}
		var failed error
		for i := range res {
			if res[i].Err != nil {
				failed = res[i].Err
				continue
			}
			res[i].File.Close()
		}
		if failed != nil {
			b.Fatal(failed)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/fd")
	cpu.report(b, n)
	closeOpener(b, o)
}

// BenchmarkOpenConcurrent16: 16 goroutines share one opener and do b.N
// opens between them; ns/op is the aggregate (wall time / b.N), whatever
// GOMAXPROCS is.
func BenchmarkOpenConcurrent16(b *testing.B) {
	const callers = 16
	path := benchTarget(b)
	o := startOpener(b, path)
	ctx := context.Background()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	b.ReportAllocs()
	cpu := startCPU(o.PID())
	b.ResetTimer()
	for range callers {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				f, err := o.Open(ctx, path, os.O_RDONLY, 0)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				f.Close()
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	cpu.report(b, 1)
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
	cfg := parent.Config{Rules: []string{path}}
	b.ReportAllocs()
	var times, first medianTimer
	for b.Loop() {
		times.start()
		first.start()
		o, err := parent.Start(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		f, err := o.Open(ctx, path, os.O_RDONLY, 0)
		if err != nil {
			o.Close()
			b.Fatal(err)
		}
		first.stop()
		f.Close()
		if err := o.Close(); err != nil {
			b.Fatal(err)
		}
		times.stop()
	}
	times.report(b, "median-ns")
	first.report(b, "first-fd-median-ns")
}

// medianTimer times each iteration of a benchmark, for the median.
type medianTimer struct {
	t0    time.Time
	times []time.Duration
}

func (m *medianTimer) start() { m.t0 = time.Now() }
func (m *medianTimer) stop()  { m.times = append(m.times, time.Since(m.t0)) }

// report reports the median as a metric of unit unit.
func (m *medianTimer) report(b *testing.B, unit string) {
	if len(m.times) == 0 {
		return
	}
	slices.Sort(m.times)
	mid := m.times[len(m.times)/2]
	if len(m.times)%2 == 0 {
		mid = (m.times[len(m.times)/2-1] + mid) / 2
	}
	b.ReportMetric(float64(mid.Nanoseconds()), unit)
}

// BenchmarkBareReexec is the floor for StartToFirstFD: start this test
// binary the way Start does (/proc/self/exe) and wait for it; TestMain makes
// it exit before it does anything else.
func BenchmarkBareReexec(b *testing.B) {
	b.ReportAllocs()
	var times medianTimer
	for b.Loop() {
		times.start()
		cmd := &exec.Cmd{Path: "/proc/self/exe", Args: []string{"privsep-bench-reexec"}, Env: []string{exitAtOnceEnv + "=1"}}
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
		times.stop()
	}
	times.report(b, "median-ns")
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
		if rss, err = vmRSS(o.PID()); err != nil {
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
	ctx := context.Background()
	open1 := func(o statsOpener) error {
		f, err := o.Open(ctx, path, os.O_RDONLY, 0)
		if err != nil {
			return err
		}
		return f.Close()
	}
	reqs := make([]parent.Request, 64)
	for i := range reqs {
		reqs[i] = parent.Request{Path: path, Flag: os.O_RDONLY}
	}
	batch := func(o statsOpener) error {
		res, err := o.OpenBatch(ctx, reqs)
		if err != nil {
			return err
		}
		for _, r := range res {
			if r.Err != nil {
				err = r.Err
				continue
			}
			r.File.Close()
		}
		return err
	}
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
			var (
				next     atomic.Int64
				wg       sync.WaitGroup
				errOnce  sync.Once
				firstErr error
			)
			for range 16 {
				wg.Go(func() {
					for next.Add(1) <= int64(n) {
						if err := open1(o); err != nil {
							errOnce.Do(func() { firstErr = err })
							return
						}
					}
				})
			}
			wg.Wait()
			return firstErr
		})
	})
}

// vmRSS returns the resident set size of process pid in bytes.
func vmRSS(pid int) (int64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(data) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := strings.Fields(string(rest)) // "4520 kB"
			if len(f) != 2 || f[1] != "kB" {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				break
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS line in /proc/%d/status", pid)
}

// cpuMeter measures the CPU time (user + system) that this process and one
// opener use, so that the cost of a request can be compared on a busy
// machine, where wall time mostly measures the wait for a CPU.
type cpuMeter struct {
	pid         int
	self, child time.Duration
	childOK     bool
}

func startCPU(pid int) cpuMeter {
	m := cpuMeter{pid: pid, self: selfCPU()}
	m.child, m.childOK = taskCPU(pid)
	return m
}

// report reports the CPU time used since startCPU per op (cpu-ns/op) and,
// when an op opens perOp files, per file (cpu-ns/fd): both processes
// together, and the parent alone (parent-cpu-ns/op).
func (m cpuMeter) report(b *testing.B, perOp int) {
	b.Helper()
	if b.N == 0 {
		return
	}
	self := selfCPU() - m.self
	child, ok := taskCPU(m.pid)
	if !ok || !m.childOK {
		b.Logf("cannot read the opener's CPU time from /proc/%d/task", m.pid)
		return
	}
	total := float64((self + child - m.child).Nanoseconds())
	b.ReportMetric(total/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(self.Nanoseconds())/float64(b.N), "parent-cpu-ns/op")
	if perOp > 1 {
		b.ReportMetric(total/float64(b.N)/float64(perOp), "cpu-ns/fd")
	}
}

// selfCPU returns the CPU time this process has used, all threads included.
func selfCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// taskCPU returns the CPU time used by the live threads of process pid, from
// the first field of /proc/PID/task/TID/schedstat (nanoseconds on CPU).
// Threads that have exited are missed; the opener's threads do not exit.
func taskCPU(pid int) (time.Duration, bool) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, false
	}
	var sum time.Duration
	for _, e := range ents {
		data, err := os.ReadFile(dir + "/" + e.Name() + "/schedstat")
		if err != nil {
			continue // the thread just exited
		}
		f := strings.Fields(string(data))
		if len(f) == 0 {
			return 0, false
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, false
		}
		sum += time.Duration(ns)
	}
	return sum, true
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
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		b.Skip("gcc is not on PATH; skipping the C reference")
	}
	src := cRefDir()
	for _, f := range []string{"direct.c", "broker_seqpacket.c"} {
		if _, err := os.Stat(filepath.Join(src, f)); err != nil {
			b.Skipf("C reference sources not found (%v); set PRIVSEP_BENCH_REF_DIR to the shared/bench directory", err)
		}
	}
	// Built once per run of this function; the sub-benchmarks are the ones
	// called again with growing b.N.
	bin := b.TempDir()
	for _, name := range []string{"direct", "broker_seqpacket"} {
		out, err := exec.Command(gcc, "-O2", "-o", filepath.Join(bin, name), filepath.Join(src, name+".c")).CombinedOutput()
		if err != nil {
			b.Fatalf("gcc %s.c: %v\n%s", name, err, out)
		}
	}
	path := benchTarget(b)

	b.Run("direct", func(b *testing.B) {
		res, _, _ := runCRef(b, filepath.Join(bin, "direct"), path, strconv.Itoa(b.N))
		d, g := res["c_direct"], res["c_getppid"]
		if len(d) < 1 || len(g) < 1 {
			b.Fatalf("direct printed no c_direct or c_getppid figure: %v", res)
		}
		b.ReportMetric(d[0], "c-ns/op")
		b.ReportMetric(g[0], "c-getppid-ns")
	})
	for _, n := range []int{1, 64} {
		b.Run("b"+strconv.Itoa(n), func(b *testing.B) {
			res, rssKB, cpu := runCRef(b, filepath.Join(bin, "broker_seqpacket"), "seq", strconv.Itoa(n), strconv.Itoa(b.N), path)
			r := res["c_seqpacket_b"+strconv.Itoa(n)]
			if len(r) < 3 {
				b.Fatalf("broker_seqpacket printed no ns/fd figure: %v", r)
			}
			b.ReportMetric(r[0], "c-ns/op")
			b.ReportMetric(r[2], "c-ns/fd")
			if rssKB > 0 {
				b.ReportMetric(rssKB*1024, "c-child-rss-bytes")
			}
			// The program does N/10+1 warm-up round trips before the timed
			// N, and its CPU time covers them all (and its start).
			if trips := b.N + b.N/10 + 1; cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(trips), "c-cpu-ns/op")
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(trips)/float64(n), "c-cpu-ns/fd")
			}
		})
	}
}

// runCRef runs a C reference program and returns its RESULT lines (name ->
// ns/op, ops/s[, ns/fd]) and the child RSS in kB it reports on stderr (0 if
// none) and the CPU time the program and its children used. It fails the benchmark if the program fails or prints no result.
func runCRef(b *testing.B, prog string, args ...string) (map[string][]float64, float64, time.Duration) {
	b.Helper()
	b.ReportAllocs()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(prog, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s %s: %v\n%s", filepath.Base(prog), strings.Join(args, " "), err, stderr.Bytes())
	}
	b.StopTimer()
	res := make(map[string][]float64)
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[0] != "RESULT" {
			continue
		}
		var v []float64
		for _, s := range f[2:] {
			x, err := strconv.ParseFloat(s, 64)
			if err != nil {
				b.Fatalf("%s: bad RESULT line %q", filepath.Base(prog), sc.Text())
			}
			v = append(v, x)
		}
		res[f[1]] = v
	}
	if len(res) == 0 {
		b.Fatalf("%s printed no RESULT line:\n%s%s", filepath.Base(prog), stdout.Bytes(), stderr.Bytes())
	}
	var rssKB float64
	for line := range strings.Lines(stderr.String()) {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "RSS" {
			rssKB, _ = strconv.ParseFloat(f[2], 64)
		}
	}
	var cpu time.Duration
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		// wait4 counts the children the program waited for: the forked
		// C opener is included.
		cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return res, rssKB, cpu
}
