//go:build linux

package parent_test

// TestSoak: many mixed operations from 16 goroutines against one opener,
// then both sides' descriptors, goroutines and the opener's resident size
// compared with the start (issue 7, RELIABILITY.md).

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/hostile"
	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/parent"
)

// soakOpsEnv overrides the number of operations of TestSoak;
// scripts/reliability.sh sets it to 1000000.
const soakOpsEnv = "PRIVSEP_SOAK_OPS"

// Default operation counts: bounded so that go test ./... stays quick (an
// operation takes some tens of microseconds, several times more under the
// race detector).
const (
	soakOpsDefault = 50000
	soakOpsRace    = 10000
)

// Tolerances at the end of the soak, against the start (after a warm-up):
// descriptors on both sides and the parent's goroutines must be back
// exactly; the opener's threads may grow a little (the Go runtime keeps the
// threads it made for blocking system calls) and its resident size by at
// most soakRSSSlack (soakRSSSlackRace under the race detector, whose shadow
// memory grows with what the opener touched).
const (
	soakThreadSlack  = 16
	soakRSSSlack     = 16 << 20
	soakRSSSlackRace = 64 << 20
)

func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test: skipped with -short")
	}
	ops := soakOpsDefault
	if hostile.Race {
		ops = soakOpsRace
	}
	if s := os.Getenv(soakOpsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q: want a positive number", soakOpsEnv, s)
		}
		ops = n
	}
	base := t.TempDir()
	dir := filepath.Join(base, "tree")
	testutil.Must(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	const nfiles = 10
	for i := 0; i < nfiles; i++ {
		testutil.Must(t, os.WriteFile(filepath.Join(dir, strconv.Itoa(i)), []byte(strconv.Itoa(i)), 0o644))
	}
	secret := filepath.Join(base, "secret")
	testutil.Must(t, os.WriteFile(secret, []byte("secret"), 0o644))
	o, err := parent.Start(context.Background(), parent.Config{Rules: []string{dir + "/"}})
	testutil.Must(t, err)
	defer o.Close()
	pid := o.PID()
	rssSlack := int64(soakRSSSlack)
	if hostile.Race {
		rssSlack = soakRSSSlackRace
	}

	// The kinds of operation, chosen by the operation's number.
	const (
		kGrant = iota
		kDenied
		kMissing
		kBatch
		kCancelled
		kTimeout
		kBadRequest
		kDir
		nKinds
	)
	kindNames := [nKinds]string{"grants", "denials", "missing", "batches", "cancelled", "short deadlines", "bad requests", "directories"}
	mix := []int{kGrant, kGrant, kGrant, kGrant, kGrant, kGrant, kGrant, kGrant,
		kDenied, kDenied, kDenied, kMissing, kMissing, kMissing,
		kBatch, kBatch, kCancelled, kTimeout, kBadRequest, kDir}
	var counts [nKinds]atomic.Int64
	var unexpected atomic.Int64
	var firstMu sync.Mutex
	var first []string
	report := func(format string, args ...any) {
		unexpected.Add(1)
		firstMu.Lock()
		if len(first) < 5 {
			first = append(first, fmt.Sprintf(format, args...))
		}
		firstMu.Unlock()
	}
	ctx := context.Background()
	checkFile := func(f *os.File, want string) {
		var b [4]byte
		n, err := unix.Pread(int(f.Fd()), b[:], 0)
		if err != nil || string(b[:n]) != want {
			report("read %s: got %q, %v; want %q", f.Name(), b[:n], err, want)
		}
		f.Close()
	}
	one := func(i int) {
		k := mix[i%len(mix)]
		counts[k].Add(1)
		file := strconv.Itoa(i % nfiles)
		switch k {
		case kGrant:
			f, err := o.Open(ctx, filepath.Join(dir, file), os.O_RDONLY, 0)
			if err != nil {
				report("grant: %v", err)
				return
			}
			checkFile(f, file)
		case kDenied:
			f, err := o.Open(ctx, secret, os.O_RDONLY, 0)
			if err == nil {
				f.Close()
			}
			if !errors.Is(err, parent.ErrDenied) {
				report("denial: got %v", err)
			}
		case kMissing:
			f, err := o.Open(ctx, filepath.Join(dir, "missing-"+file), os.O_RDONLY, 0)
			if err == nil {
				f.Close()
			}
			if !errors.Is(err, fs.ErrNotExist) {
				report("missing: got %v", err)
			}
		case kBatch:
			reqs := []parent.Request{
				{Path: filepath.Join(dir, file)}, {Path: secret}, {Path: filepath.Join(dir, "missing")},
				{Path: filepath.Join(dir, strconv.Itoa((i+1)%nfiles))}, {Path: dir, Flag: unix.O_DIRECTORY},
				{Path: filepath.Join(dir, "sub")}, {Path: secret}, {Path: filepath.Join(dir, strconv.Itoa((i+2)%nfiles))},
			}
			res, err := o.OpenBatch(ctx, reqs)
			if err != nil {
				report("batch: %v", err)
				return
			}
			for j, r := range res {
				switch j {
				case 0:
					checkOK(r, report, func(f *os.File) { checkFile(f, file) })
				case 3:
					checkOK(r, report, func(f *os.File) { checkFile(f, strconv.Itoa((i+1)%nfiles)) })
				case 7:
					checkOK(r, report, func(f *os.File) { checkFile(f, strconv.Itoa((i+2)%nfiles)) })
				case 4, 5:
					// Directories: the rule does not say dirs=yes.
					if r.Err == nil {
						r.File.Close()
					}
					if !errors.Is(r.Err, parent.ErrDenied) {
						report("batch item %d: got %v, want a directory refusal", j, r.Err)
					}
				case 1, 6:
					if !errors.Is(r.Err, parent.ErrDenied) {
						report("batch item %d: got %v, want a denial", j, r.Err)
					}
				case 2:
					if !errors.Is(r.Err, fs.ErrNotExist) {
						report("batch item %d: got %v, want ENOENT", j, r.Err)
					}
				}
			}
		case kCancelled:
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			f, err := o.Open(cctx, filepath.Join(dir, file), os.O_RDONLY, 0)
			if err == nil {
				f.Close()
			}
			if !errors.Is(err, context.Canceled) {
				report("cancelled: got %v", err)
			}
		case kTimeout:
			cctx, cancel := context.WithTimeout(ctx, 20*time.Microsecond)
			f, err := o.Open(cctx, filepath.Join(dir, file), os.O_RDONLY, 0)
			cancel()
			switch {
			case err == nil:
				checkFile(f, file)
			case !errors.Is(err, context.DeadlineExceeded):
				report("short deadline: got %v", err)
			}
		case kBadRequest:
			f, err := o.Open(ctx, filepath.Join(dir, file), os.O_RDONLY|unix.O_NOATIME, 0)
			if err == nil {
				f.Close()
			}
			if !errors.Is(err, syscall.EINVAL) {
				report("bad request: got %v", err)
			}
		case kDir:
			// Listed through the opener: the rule keeps the descriptor.
			ents, err := o.ReadDir(ctx, filepath.Join(dir, "sub"))
			if err != nil || len(ents) != 0 {
				report("directory: %v, %v", ents, err)
			}
		}
	}
	// Warm up: every kind once, so that lazily made things exist.
	for i := 0; i < 2*len(mix); i++ {
		one(i)
	}
	for i := range counts {
		counts[i].Store(0)
	}
	runtime.GC()
	fds0 := testutil.FDs(t, 0)
	g0 := runtime.NumGoroutine()
	cfds0, err := testutil.SettledFDs(pid, -1)
	testutil.Must(t, err)
	rss0, err := hostile.RSS(pid)
	testutil.Must(t, err)
	th0, err := hostile.StatusField(pid, "Threads")
	testutil.Must(t, err)

	const workers = 16
	var next atomic.Int64
	var wg sync.WaitGroup
	begin := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= ops || unexpected.Load() > 100 {
					return
				}
				one(i)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(begin)
	var done int64
	var mixText string
	for k := range counts {
		c := counts[k].Load()
		done += c
		if k > 0 {
			mixText += ", "
		}
		mixText += fmt.Sprintf("%d %s", c, kindNames[k])
	}
	// One round trip flushes replies to abandoned calls still in the socket.
	one(0)
	fds1 := settleSelfFDs(t, fds0)
	g1 := settleGoroutines(g0)
	cfds1, err := testutil.SettledFDs(pid, cfds0)
	testutil.Must(t, err)
	rss1, err := hostile.RSS(pid)
	testutil.Must(t, err)
	hwm, err := hostile.StatusField(pid, "VmHWM")
	testutil.Must(t, err)
	th1, err := hostile.StatusField(pid, "Threads")
	testutil.Must(t, err)
	closeErr := o.Close()

	mib := func(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	hostile.Row(t, "soak", fmt.Sprintf("%d mixed operations from %d goroutines (race detector: %v)", ops, workers, hostile.Race),
		fmt.Sprintf("no unexpected result; parent and opener descriptors and parent goroutines back to the start; opener threads within +%d, RSS within +%s; Close returns nil", soakThreadSlack, mib(rssSlack)),
		fmt.Sprintf("%d done in %v (%.0f ops/s, %.1f µs/op): %s; %d unexpected; parent fds %d→%d, goroutines %d→%d; opener fds %d→%d, threads %d→%d, RSS %s→%s (peak %s); Close: %v",
			done, elapsed.Round(time.Millisecond), float64(done)/elapsed.Seconds(), float64(elapsed.Microseconds())/float64(max(done, 1)),
			mixText, unexpected.Load(), fds0, fds1, g0, g1, cfds0, cfds1, th0, th1, mib(rss0), mib(rss1), mib(hwm<<10), closeErr))
	if n := unexpected.Load(); n > 0 {
		t.Errorf("%d unexpected results; first: %q", n, first)
	}
	if done < int64(ops) {
		t.Errorf("%d of %d operations done", done, ops)
	}
	if fds1 != fds0 || g1 > g0 {
		t.Errorf("parent: descriptors %d→%d, goroutines %d→%d", fds0, fds1, g0, g1)
	}
	if cfds1 != cfds0 {
		t.Errorf("opener descriptors %d→%d: %s", cfds0, cfds1, testutil.FDList(pid))
	}
	if th1 > th0+soakThreadSlack {
		t.Errorf("opener threads %d→%d", th0, th1)
	}
	if rss1 > rss0+rssSlack {
		t.Errorf("opener RSS %s→%s", mib(rss0), mib(rss1))
	}
	if closeErr != nil {
		t.Errorf("Close: %v", closeErr)
	}
}

// checkOK checks that a batch item succeeded and hands its file to use.
func checkOK(r parent.Result, report func(string, ...any), use func(*os.File)) {
	if r.Err != nil || r.File == nil {
		report("batch item: %v", r.Err)
		return
	}
	use(r.File)
}
