//go:build linux

package bench_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/privsep-go/privsep/child"
	"github.com/privsep-go/privsep/internal/bench"
	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/parent"
)

// TestMain makes the test binary what Run expects of a binary: the opener
// it starts, and a program that exits at once for BareStart.
func TestMain(m *testing.M) {
	child.Init()
	bench.ExitIfBareStart()
	if bench.IsRawOpener() {
		if err := bench.RunRawOpener(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	testutil.LoadLocalZone()
	os.Exit(m.Run())
}

func TestMedianRatio(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := bench.Median(c.xs); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.xs, got, c.want)
		}
	}
	if got := bench.Ratio(3, 0); got != 0 {
		t.Errorf("Ratio(3, 0) = %v, want 0 (a figure not taken)", got)
	}
	if got := bench.Ratio(3, 2); got != 1.5 {
		t.Errorf("Ratio(3, 2) = %v, want 1.5", got)
	}
}

func TestFormatNs(t *testing.T) {
	for _, c := range []struct {
		ns         float64
		unit, want string
	}{
		{1500, "ns/op", "1.50 µs/op"},
		{2.5e6, "ns", "2.50 ms"},
		{640, "ns/fd", "0.64 µs/fd"},
	} {
		if got := bench.FormatNs(c.ns, c.unit); got != c.want {
			t.Errorf("FormatNs(%v, %q) = %q, want %q", c.ns, c.unit, got, c.want)
		}
	}
}

// TestTimeLoop: at least minOps calls even with no time to spend, and the
// first error ends the loop.
func TestTimeLoop(t *testing.T) {
	calls := 0
	_, n, err := bench.TimeLoop(context.Background(), 0, 7, func() error { calls++; return nil })
	if err != nil || n < 7 || n != calls {
		t.Errorf("TimeLoop(0, 7): n %d, calls %d, err %v; want n = calls >= 7, no error", n, calls, err)
	}
	boom := errors.New("boom")
	calls = 0
	_, _, err = bench.TimeLoop(context.Background(), time.Hour, 1, func() error {
		if calls++; calls == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || calls != 3 {
		t.Errorf("TimeLoop with an op failing at call 3: err %v after %d calls, want boom after 3", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := bench.TimeEach(ctx, time.Hour, 1, func() error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("TimeEach with a cancelled context: got %v, want context.Canceled", err)
	}
}

// TestConcurrently: a count shared out through more is met exactly, and
// an error stops every caller.
func TestConcurrently(t *testing.T) {
	var next atomic.Int64
	n, err := bench.Concurrently(16, func() bool { return next.Add(1) <= 1000 }, func() error { return nil })
	if err != nil || n != 1000 {
		t.Errorf("Concurrently over a count of 1000: %d calls, %v; want 1000, nil", n, err)
	}
	boom := errors.New("boom")
	var calls atomic.Int64
	_, err = bench.Concurrently(16, func() bool { return true }, func() error {
		if calls.Add(1) >= 100 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("Concurrently with a failing op: got %v, want boom", err)
	}
}

func TestParseCOutput(t *testing.T) {
	dir := t.TempDir()
	// A stand-in for a C reference program: prints what it is given.
	prog := filepath.Join(dir, "fake")
	script := "#!/bin/sh\nprintf '%b' \"$1\"\nprintf '%b' \"$2\" >&2\nexit \"${3:-0}\"\n"
	if err := os.WriteFile(prog, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := bench.RunC(ctx, prog, `warming up\nRESULT c_seqpacket_b64 1000.5 999 15.6\nRESULT c_x 7 8\n`, `RSS c_child 872\n`)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Figures["c_seqpacket_b64"]; len(got) != 3 || got[0] != 1000.5 || got[2] != 15.6 {
		t.Errorf("c_seqpacket_b64 figures: got %v, want [1000.5 999 15.6]", got)
	}
	if ns, err := res.NsPerOp("c_x"); ns != 7 || err != nil {
		t.Errorf("NsPerOp(c_x) = %v, %v; want 7", ns, err)
	}
	if _, err := res.NsPerOp("c_missing"); err == nil {
		t.Error("NsPerOp of a figure not printed: no error")
	}
	if res.ChildRSS != 872<<10 {
		t.Errorf("ChildRSS = %d, want %d", res.ChildRSS, 872<<10)
	}
	for _, bad := range [][]string{
		{`no result here\n`, ``},
		{`RESULT c_x fast\n`, ``},
		{`RESULT c_x 7 8\n`, `it broke\n`, "3"},
	} {
		if _, err := bench.RunC(ctx, prog, bad...); err == nil {
			t.Errorf("RunC printing %q: no error", bad)
		}
	}
}

// TestBuildCRef: missing sources say so (and match fs.ErrNotExist, which
// the benchmarks skip on); with gcc and shared/bench at hand the programs
// build and print their figures.
func TestBuildCRef(t *testing.T) {
	if _, err := bench.BuildCRef(t.TempDir(), t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("BuildCRef of an empty directory: got %v, want fs.ErrNotExist", err)
	}
	c, err := bench.BuildCRef(refDir(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	path, err := bench.WriteTarget(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	res, err := bench.RunC(context.Background(), c.Broker, "seq", "1", "20", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := res.NsPerOp("c_seqpacket_b1"); err != nil {
		t.Error(err)
	}
	if res.ChildRSS <= 0 || res.CPU <= 0 {
		t.Errorf("broker run: child RSS %d, CPU %v; want both positive", res.ChildRSS, res.CPU)
	}
}

// TestOperations runs each operation through a real opener and checks
// that none leaves a descriptor open here.
func TestOperations(t *testing.T) {
	path, err := bench.WriteTarget(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	o, err := parent.Start(context.Background(), parent.Config{Rules: []string{path}})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	before, err := testutil.CountFDs(0)
	if err != nil {
		t.Fatal(err)
	}
	cpu := bench.StartCPU(o.PID())
	ops := map[string]func() error{
		"DirectOpenClose": func() error { return bench.DirectOpenClose(path) },
		"DirectOsOpen":    func() error { return bench.DirectOsOpen(path) },
		"OpenClose":       func() error { return bench.OpenClose(o, path) },
		"OpenBatchClose":  func() error { return bench.OpenBatchClose(o, bench.Requests(path, 64)) },
	}
	for name, op := range ops {
		for range 10 {
			if err := op(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
	if err := bench.OpenBatchClose(o, bench.Requests(path+".missing", 2)); err == nil {
		t.Error("OpenBatchClose of files the policy denies: no error")
	}
	if after, err := testutil.CountFDs(0); err != nil || after != before {
		t.Errorf("descriptors: %d before, %d after (%v)\n%s", before, after, err, testutil.FDList(0))
	}
	self, both, err := cpu.Used()
	if err != nil || self <= 0 || both < self {
		t.Errorf("CPU used: self %v, both %v, %v; want 0 < self <= both", self, both, err)
	}
	if rss, err := bench.VmRSS(o.PID()); err != nil || rss <= 0 {
		t.Errorf("VmRSS of the opener: %d, %v", rss, err)
	}
	m, err := bench.SmapsRollup(o.PID())
	if err != nil || m.Anonymous <= 0 || m.File <= 0 || m.PSS <= 0 || m.PSS > m.RSS || m.Anonymous+m.File != m.RSS {
		t.Errorf("SmapsRollup of the opener: %+v, %v; want every part positive, and anonymous and file making up RSS", m, err)
	}
	if _, err := bench.SmapsRollup(1 << 30); err == nil {
		t.Error("SmapsRollup of no process: no error")
	}
}

func TestStartToFirstFD(t *testing.T) {
	path, err := bench.WriteTarget(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	before, err := testutil.CountFDs(0)
	if err != nil {
		t.Fatal(err)
	}
	first, whole, err := bench.StartToFirstFD(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if first <= 0 || whole < first {
		t.Errorf("first fd after %v, whole %v; want 0 < first <= whole", first, whole)
	}
	if after, err := testutil.CountFDs(0); err != nil || after != before {
		t.Errorf("descriptors: %d before, %d after (%v)\n%s", before, after, err, testutil.FDList(0))
	}
}

func TestBareStart(t *testing.T) {
	if err := bench.BareStart(bench.ExitAtOnceEnv); err != nil {
		t.Fatal(err)
	}
	// The resident size of this test binary's bare start, not of this
	// process (which a vfork child's ru_maxrss would report): a bare start
	// runs the runtime and the package inits only, so it is smaller.
	before := testutil.FDs(t, os.Getpid())
	rss, err := bench.BareStartRSS(bench.ExitAtOnceEnv)
	if err != nil {
		t.Fatal(err)
	}
	self, err := bench.VmRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss <= 0 || rss >= self {
		t.Errorf("bare start RSS %d bytes, this process %d: want 0 < bare < this", rss, self)
	}
	if after := testutil.FDs(t, os.Getpid()); after != before {
		t.Errorf("descriptors: %d before BareStartRSS, %d after", before, after)
	}
}

func TestProcErrors(t *testing.T) {
	// A pid above the kernel's maximum is never a process.
	const gone = 1 << 30
	if _, err := bench.VmRSS(gone); err == nil {
		t.Error("VmRSS of no process: no error")
	}
	if _, err := bench.TaskCPU(gone); err == nil {
		t.Error("TaskCPU of no process: no error")
	}
	if _, _, err := bench.StartCPU(gone).Used(); err == nil {
		t.Error("CPUMeter of no process: no error")
	}
	if cpu, err := bench.TaskCPU(os.Getpid()); err != nil || cpu <= 0 {
		t.Errorf("TaskCPU of this process: %v, %v", cpu, err)
	}
	if l := bench.LoadAvg(); l[0] < 0 {
		t.Errorf("LoadAvg: %v", l)
	}
}

func TestRunBadOptions(t *testing.T) {
	for _, opt := range []bench.Options{{Duration: time.Second}, {Rounds: 1}, {Duration: -time.Second, Rounds: 3}} {
		if _, err := bench.Run(context.Background(), opt); err == nil {
			t.Errorf("Run(%+v): no error", opt)
		}
	}
}

// TestRun takes a very short run and checks that every figure was taken;
// how fast anything is, it does not check.
func TestRun(t *testing.T) {
	var log strings.Builder
	rep, err := bench.Run(context.Background(), bench.Options{Duration: 50 * time.Millisecond, Rounds: 1, Count: 300, Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	checkCounts(t, rep, false)
	if rep.BareStartRSSBytes <= 0 {
		t.Errorf("bare start RSS %d, want it positive", rep.BareStartRSSBytes)
	}
	if rep.ChildMemory == nil || rep.ChildMemory.RSS <= 0 {
		t.Errorf("no breakdown of the idle opener's memory: %+v", rep.ChildMemory)
	}
	for name, v := range map[string]float64{
		"direct": rep.DirectNsPerOp, "single": rep.SingleNsPerOp, "concurrent16": rep.Concurrent16NsPerOp,
		"batch64": rep.Batch64NsPerFD, "start": rep.StartNs, "bare start": rep.BareStartNs,
		"start with Close": rep.StartCloseNs, "single CPU": rep.SingleCPUNsPerOp,
		"RSS": float64(rep.ChildRSSBytes), "allocations": rep.AllocsPerOpen,
	} {
		if !(v > 0) {
			t.Errorf("%s = %v, want a positive figure", name, v)
		}
	}
	if rep.CSingleNsPerOp != 0 || len(rep.Spread["c_single"]) != 0 {
		t.Errorf("C reference figures without RefDir: %v", rep.Spread["c_single"])
	}
	if !strings.Contains(log.String(), "privsep bench: round 1/1: 1 caller") {
		t.Errorf("no progress line for the 1-caller figure:\n%s", log.String())
	}
}

// checkCounts checks that the counted figures were taken where they can
// be (as root they must be) and are of the right size: the calls a
// request makes in both processes, not in one. withC checks the C
// reference's, whose calls per round trip its source fixes: 7 for one fd
// (send, receive and close in the parent; receive, open, send and close in
// the child) and 3 per fd in a batch, plus the batch's 4 messages.
func checkCounts(t *testing.T, rep *bench.Report, withC bool) {
	t.Helper()
	if rep.SingleCounts == nil {
		if os.Geteuid() == 0 {
			t.Fatalf("root, and no system calls counted: %s", rep.CountNote)
		}
		if rep.CountNote == "" {
			t.Error("no counts and no note saying why")
		}
		return
	}
	for name, c := range map[string]*bench.PerOp{"1 caller": rep.SingleCounts, "16 callers": rep.Concurrent16Counts, "batch of 64": rep.Batch64Counts} {
		if c == nil || c.Syscalls < 4 || c.Syscalls > 40 || c.Switches < 0 {
			t.Errorf("%s: counts %+v, want 4 to 40 system calls per open", name, c)
		}
	}
	if !withC {
		if rep.CSingleCounts != nil {
			t.Errorf("C reference counts without RefDir: %+v", rep.CSingleCounts)
		}
		return
	}
	near := func(name string, c *bench.PerOp, want float64) {
		if c == nil || c.Syscalls < want-0.25 || c.Syscalls > want+0.25 {
			t.Errorf("%s: counts %+v, want %.2f system calls", name, c, want)
		}
	}
	near("C opener, 1 fd", rep.CSingleCounts, 7)
	near("C opener, batch of 64, per fd", rep.CBatch64Counts, 3+4.0/64)
}

// TestRunCReference: with RefDir the C programs are measured and counted
// in the same run.
func TestRunCReference(t *testing.T) {
	src := refDir(t)
	var log strings.Builder
	rep, err := bench.Run(context.Background(), bench.Options{Duration: 50 * time.Millisecond, Rounds: 1, Count: 300, RefDir: src, Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if rep.CSingleNsPerOp <= 0 || rep.CBatch64NsPerFD <= 0 || rep.SingleOverCSingle <= 0 {
		t.Errorf("C reference figures: %v, %v, ratio %v", rep.CSingleNsPerOp, rep.CBatch64NsPerFD, rep.SingleOverCSingle)
	}
	checkCounts(t, rep, true)
}

// refDir returns the C reference's sources, or skips the test without
// them or gcc.
func refDir(t *testing.T) string {
	t.Helper()
	src := os.Getenv("PRIVSEP_BENCH_REF_DIR")
	if src == "" {
		src = filepath.Join("..", "..", "..", "shared", "bench")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no gcc: the C reference is not built")
	}
	if _, err := os.Stat(filepath.Join(src, "direct.c")); err != nil {
		t.Skipf("no C reference sources: %v", err)
	}
	return src
}

// TestRawLoop makes round trips through the raw Go loop baseline and checks
// that none leaves a descriptor here, and that its opener ends with the
// loop.
func TestRawLoop(t *testing.T) {
	path, err := bench.WriteTarget(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	before := testutil.FDs(t, os.Getpid())
	l, err := bench.StartRawLoop(path)
	if err != nil {
		t.Fatal(err)
	}
	for range 200 {
		if err := l.OpenClose(); err != nil {
			l.Close()
			t.Fatal(err)
		}
	}
	if n := testutil.FDs(t, l.PID()); n < 4 {
		t.Errorf("the raw loop opener holds %d descriptors: want its socket at 3 besides stdio", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if after := testutil.FDs(t, os.Getpid()); after != before {
		t.Errorf("descriptors: %d before the raw loop, %d after", before, after)
	}
}

// TestRawOpenerNeedsItsSocket: started without the socket at descriptor 3,
// the raw loop's opener refuses to run rather than read from whatever is
// there.
func TestRawOpenerNeedsItsSocket(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), bench.RawOpenerEnv+"="+os.DevNull)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not a SOCK_SEQPACKET socket") {
		t.Errorf("raw opener without its socket: %v, %q; want it to refuse", err, out)
	}
}

// TestRunBaselines: with Baselines the raw Go loop is measured, and the
// Python one where python3 can run it.
func TestRunBaselines(t *testing.T) {
	var log strings.Builder
	rep, err := bench.Run(context.Background(), bench.Options{Duration: 50 * time.Millisecond, Rounds: 1, Count: -1, Baselines: true, Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if rep.RawGoNsPerOp <= 0 || rep.RawGoCPUNsPerOp <= 0 || rep.SingleOverRawGo <= 0 {
		t.Errorf("raw Go loop: %v ns, %v CPU ns, ratio %v; want all positive", rep.RawGoNsPerOp, rep.RawGoCPUNsPerOp, rep.SingleOverRawGo)
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Log("no python3: the Python baseline is not checked")
		return
	}
	if rep.PythonNsPerOp <= 0 && !strings.Contains(log.String(), "the Python baseline is skipped") {
		t.Errorf("python3 on PATH, and no Python figure nor a note saying why:\n%s", log.String())
	}
}
