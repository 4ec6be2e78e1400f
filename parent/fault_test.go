//go:build linux

package parent_test

// The fault suite of the parent (issue 7, RELIABILITY.md): a fake opener
// (internal/hostile/fakechild) that breaks the protocol, writes garbage logs
// or dies in every way; descriptor exhaustion on both sides; and lifecycle
// faults with their timings (the fake opener in fault_fake_test.go, the
// lifecycle in fault_lifecycle_test.go, shared helpers in
// faultcheck_test.go). Every case checks that the parent returns a
// clear error, closes every descriptor that arrived, leaves no goroutine
// behind and reports the opener's status, and logs a row of the reliability
// table (hostile.Row). Cases that need this process's own RLIMIT_NOFILE
// lowered, or this process killed, run in a re-executed test binary
// (TestFaultHelper).

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/hostile"
	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/parent"
	"github.com/privsep-go/privsep/protocol"
)

const (
	secFakeProtocol = "parent: a fake opener that breaks the protocol"
	secFakeDeath    = "parent: a fake opener that dies or fails the handshake"
	secFakeLogs     = "parent: garbage on the opener's stderr"
	secExhaustion   = "descriptor exhaustion"
	secLifecycle    = "lifecycle faults"
)

// faultRoleEnv selects the role of a re-executed test binary (TestFaultHelper).
const faultRoleEnv = "PRIVSEP_FAULT_ROLE"

// faultDirEnv hands the helper a directory of test files.
const faultDirEnv = "PRIVSEP_FAULT_DIR"

// TestFaultOpenerAtFDLimit lowers the real opener's RLIMIT_NOFILE to what
// it holds (prlimit(2)): opens fail with EMFILE, reported as a system error
// (an *fs.PathError, not a denial), and it serves again once the limit is
// raised.
func TestFaultOpenerAtFDLimit(t *testing.T) {
	root, _ := tree(t)
	o := start(t, parent.Config{Rules: []string{root + "/"}})
	pid := o.PID()
	path := root + "/a.txt"
	if _, err := read(t, o, path); err != nil {
		t.Fatal(err)
	}
	before, err := testutil.SettledFDs(pid, -1)
	testutil.Must(t, err)
	var old unix.Rlimit
	testutil.Must(t, unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &old))
	free, err := hostile.LowestFreeFD(pid)
	testutil.Must(t, err)
	testutil.Must(t, unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: uint64(free), Max: old.Max}, nil))
	_, openErr := read(t, o, path)
	res, batchErr := o.OpenBatch(context.Background(), []parent.Request{{Path: path}, {Path: path}})
	var itemErr error
	if batchErr == nil && len(res) == 2 {
		itemErr = res[0].Err
		for _, r := range res {
			if r.File != nil {
				r.File.Close()
			}
		}
	}
	testutil.Must(t, unix.Prlimit(pid, unix.RLIMIT_NOFILE, &old, nil))
	got, afterErr := read(t, o, path)
	after, err := testutil.SettledFDs(pid, before)
	testutil.Must(t, err)
	var pe *fs.PathError
	hostile.Row(t, secExhaustion, fmt.Sprintf("opener at its RLIMIT_NOFILE (prlimit soft limit %d)", free),
		"Open and each batch item fail with *fs.PathError matching syscall.EMFILE (a system error, not ErrDenied); after raising the limit the opener serves; its fds unchanged",
		fmt.Sprintf("Open: %q; batch item: %q; after raising: %q, %v; opener fds %d→%d", errText(openErr), errText(itemErr), got, afterErr, before, after))
	if !errors.As(openErr, &pe) || !errors.Is(openErr, syscall.EMFILE) || errors.Is(openErr, parent.ErrDenied) {
		t.Errorf("Open at the opener's limit: %v, want *fs.PathError with EMFILE", openErr)
	}
	if batchErr != nil || !errors.Is(itemErr, syscall.EMFILE) {
		t.Errorf("batch at the opener's limit: %v / item %v, want each item EMFILE", batchErr, itemErr)
	}
	if afterErr != nil || got != "alpha" {
		t.Errorf("after raising the limit: %q, %v", got, afterErr)
	}
	if after != before {
		t.Errorf("opener descriptors %d→%d", before, after)
	}
}

// emfileReport is what the parent-emfile role found, as JSON on stdout.
type emfileReport struct {
	Limit                 int      // the soft limit set: the lowest free descriptor
	OpenErr               string   // Open at the limit
	OpenEMFILE, OpenIsPE  bool     // matches syscall.EMFILE; is an *fs.PathError
	BatchErr              string   // a 253-item batch with room for 10 descriptors
	BatchEMFILE           bool     //
	Arrived               int      // descriptors the kernel installed for that batch (room)
	Concurrent            string   // 16 goroutines with room for 3 descriptors
	ConcurrentOK          bool     // every result a success or EMFILE, none hung
	AfterOpen, AfterBatch string   // after raising the limit
	FDsBefore, FDsAfter   int      // this process's descriptors
	FDsAtLimit            int      // after the failed calls, before raising
	CloseErr              string   //
	Fake                  []string // the ctrunc fake opener: at the limit, after raising
	FakeFDsBefore         int      // before either opener started
	FakeFDsAfter          int      // after both were closed
}

// TestFaultParentAtFDLimit runs the parent-emfile role: this process's
// RLIMIT_NOFILE lowered to the descriptors it holds, a call whose reply
// carries descriptors fails with a clear error matching syscall.EMFILE,
// everything that did arrive is closed, and the next call after raising the
// limit works.
func TestFaultParentAtFDLimit(t *testing.T) {
	root, _ := tree(t)
	fc := hostile.BuildFakeChild(t)
	out := runFaultRole(t, "parent-emfile", faultDirEnv+"="+root, hostile.FakeChildEnv+"="+fc.Binary())
	var r emfileReport
	line := roleLine(out, "EMFILE-REPORT ")
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("role output: %v\n%s", err, out)
	}
	hostile.Row(t, secExhaustion, fmt.Sprintf("parent at its RLIMIT_NOFILE (soft limit %d, in a subprocess): Open", r.Limit),
		"fails with a clear error matching syscall.EMFILE (an *fs.PathError, as Open documents); the connection goes on",
		fmt.Sprintf("%q (EMFILE: %v, *fs.PathError: %v)", r.OpenErr, r.OpenEMFILE, r.OpenIsPE))
	hostile.Row(t, secExhaustion, "parent with room for 10 descriptors: a batch of 253 (MSG_CTRUNC)",
		"fails with EMFILE; the descriptors that did arrive are closed",
		fmt.Sprintf("%q (EMFILE: %v); fds at the limit %d, before %d", r.BatchErr, r.BatchEMFILE, r.FDsAtLimit, r.FDsBefore))
	hostile.Row(t, secExhaustion, "parent with room for 3 descriptors: 16 goroutines × 20 opens (coalesced into batches)",
		"each call succeeds or fails with EMFILE as an *fs.PathError; none hangs; nothing leaked",
		r.Concurrent)
	hostile.Row(t, secExhaustion, "parent: limit raised again",
		"Open and a 253-item batch work; no descriptor leaked; Close returns nil",
		fmt.Sprintf("Open: %s; batch: %s; fds %d→%d; Close: %s", r.AfterOpen, r.AfterBatch, r.FDsBefore, r.FDsAfter, r.CloseErr))
	hostile.Row(t, secExhaustion, "fake opener sends 253 descriptors on an opened (header says 1) to a parent at its limit",
		"MSG_CTRUNC wins: that call fails with EMFILE and the connection goes on; with the limit raised the same reply is a count mismatch, fatal; nothing leaked",
		fmt.Sprintf("%s; fds %d before either opener started, %d after both closed", strings.Join(r.Fake, "; "), r.FakeFDsBefore, r.FakeFDsAfter))
	if !r.OpenEMFILE {
		t.Errorf("Open at the limit: %q does not match EMFILE", r.OpenErr)
	}
	if !r.OpenIsPE {
		t.Errorf("BUG: Open at the parent's descriptor limit returned %q, which is not an *fs.PathError (Open documents that its errors are, a dead opener's *ExitError apart)", r.OpenErr)
	}
	if !r.ConcurrentOK {
		t.Errorf("16 goroutines at the limit: %s", r.Concurrent)
	}
	if !r.BatchEMFILE {
		t.Errorf("batch at the limit: %q does not match EMFILE", r.BatchErr)
	}
	if r.FDsAtLimit != r.FDsBefore || r.FDsAfter != r.FDsBefore {
		t.Errorf("descriptors: %d before, %d at the limit, %d after", r.FDsBefore, r.FDsAtLimit, r.FDsAfter)
	}
	if r.AfterOpen != "ok" || r.AfterBatch != "ok" || r.CloseErr != "<nil>" {
		t.Errorf("after raising the limit: Open %s, batch %s, Close %s", r.AfterOpen, r.AfterBatch, r.CloseErr)
	}
	if len(r.Fake) != 2 || !strings.Contains(r.Fake[0], "EMFILE") || !strings.Contains(r.Fake[1], "ExitError") {
		t.Errorf("ctrunc fake: %q", r.Fake)
	}
	if r.FakeFDsAfter != r.FakeFDsBefore {
		t.Errorf("ctrunc fake: descriptors %d→%d", r.FakeFDsBefore, r.FakeFDsAfter)
	}
}

// roleParentEMFILE is the parent-emfile role.
func roleParentEMFILE(t *testing.T) {
	root := os.Getenv(faultDirEnv)
	path := root + "/a.txt"
	base := testutil.FDs(t, 0) // before both openers
	o, err := parent.Start(context.Background(), parent.Config{Rules: []string{root + "/"}})
	testutil.Must(t, err)
	fake, err := parent.Start(context.Background(), parent.Config{
		Executable: hostile.FakeChildAt(os.Getenv(hostile.FakeChildEnv)).Path(t, "ctrunc"), Rules: []string{root + "/"}})
	testutil.Must(t, err)
	batch := make([]parent.Request, protocol.MaxBatch)
	for i := range batch {
		batch[i].Path = path
	}
	openOnce := func(o *parent.Opener) error {
		f, err := o.Open(context.Background(), path, os.O_RDONLY, 0)
		if err == nil {
			f.Close()
		}
		return err
	}
	batchOnce := func() error {
		res, err := o.OpenBatch(context.Background(), batch)
		for _, r := range res {
			if r.File != nil {
				r.File.Close()
			} else if err == nil {
				err = r.Err
			}
		}
		return err
	}
	// Warm up, so that everything lazily opened is open.
	testutil.Must(t, openOnce(o))
	testutil.Must(t, batchOnce())
	var r emfileReport
	r.FDsBefore = testutil.FDs(t, 0)
	var old unix.Rlimit
	testutil.Must(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &old))
	free, err := hostile.LowestFreeFD(0)
	testutil.Must(t, err)
	r.Limit = free
	setLimit := func(cur uint64) {
		testutil.Must(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: cur, Max: old.Max}))
	}

	setLimit(uint64(free))
	err = openOnce(o)
	var pe *fs.PathError
	r.OpenErr, r.OpenEMFILE, r.OpenIsPE = errText(err), errors.Is(err, syscall.EMFILE), errors.As(err, &pe)
	setLimit(uint64(free + 10))
	err = batchOnce()
	r.BatchErr, r.BatchEMFILE = errText(err), errors.Is(err, syscall.EMFILE)
	r.FDsAtLimit = testutil.FDs(t, 0)
	// Many callers at once (their opens coalesce into batches) with room
	// for 3 descriptors: each call succeeds or fails with EMFILE.
	setLimit(uint64(free + 3))
	var mu sync.Mutex
	okN, emfileN, otherN := 0, 0, 0
	var other string
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				f, err := o.Open(ctx, path, os.O_RDONLY, 0)
				cancel()
				mu.Lock()
				switch {
				case err == nil:
					okN++
				case errors.Is(err, syscall.EMFILE) && errors.As(err, new(*fs.PathError)):
					emfileN++
				default:
					otherN++
					other = err.Error()
				}
				mu.Unlock()
				if f != nil {
					f.Close()
				}
			}
		}()
	}
	wg.Wait()
	r.Concurrent = fmt.Sprintf("%d ok, %d EMFILE (*fs.PathError), %d other %q; fds after %d", okN, emfileN, otherN, other, testutil.FDs(t, 0))
	r.ConcurrentOK = otherN == 0 && okN+emfileN == 320
	setLimit(old.Cur)
	r.AfterOpen, r.AfterBatch = "ok", "ok"
	if err := openOnce(o); err != nil {
		r.AfterOpen = err.Error()
	}
	if err := batchOnce(); err != nil {
		r.AfterBatch = err.Error()
	}
	r.FDsAfter = testutil.FDs(t, 0)
	r.CloseErr = errText(o.Close())

	// The fake: 253 descriptors on an opened reply.
	r.FakeFDsBefore = base
	free, err = hostile.LowestFreeFD(0)
	testutil.Must(t, err)
	setLimit(uint64(free + 10))
	err = openOnce(fake)
	r.Fake = append(r.Fake, fmt.Sprintf("at the limit: %q (EMFILE: %v)", errText(err), errors.Is(err, syscall.EMFILE)))
	setLimit(old.Cur)
	err = openOnce(fake)
	var ee *parent.ExitError
	r.Fake = append(r.Fake, fmt.Sprintf("limit raised: %q (*ExitError: %v)", errText(err), errors.As(err, &ee)))
	fake.Close()
	r.FakeFDsAfter = settleSelfFDs(t, r.FakeFDsBefore)
	b, err := json.Marshal(r)
	testutil.Must(t, err)
	fmt.Printf("EMFILE-REPORT %s\n", b)
}

// runFaultRole runs this test binary again with only TestFaultHelper
// selected and role in the environment, and returns its output.
func runFaultRole(t *testing.T, role string, env ...string) string {
	t.Helper()
	exe, err := os.Executable()
	testutil.Must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^TestFaultHelper$", "-test.count=1", "-test.timeout=55s")
	cmd.Env = append(append(os.Environ(), faultRoleEnv+"="+role), env...)
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("role %s: %v\n%s", role, err, out)
	}
	return string(out)
}

// roleLine returns the rest of the first line of out that starts with
// prefix.
func roleLine(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return strings.TrimPrefix(l, prefix)
		}
	}
	return ""
}

// TestFaultHelper is not a test: it plays a role of fault_test.go in a
// re-executed test binary (runFaultRole), and does nothing otherwise.
func TestFaultHelper(t *testing.T) {
	switch role := os.Getenv(faultRoleEnv); role {
	case "":
		return
	case "parent-emfile":
		roleParentEMFILE(t)
	case "parent-for-kill":
		o, err := parent.Start(context.Background(), parent.Config{Rules: []string{"/etc/hostname"}})
		testutil.Must(t, err)
		fmt.Printf("OPENER %d\n", o.PID())
		time.Sleep(time.Minute) // until killed
	default:
		t.Fatalf("unknown role %q", role)
	}
}

// TestFaultParentKilled kills a parent (a re-executed test binary that
// started an opener) with SIGKILL and measures how long the opener takes to
// notice end of stream and exit.
func TestFaultParentKilled(t *testing.T) {
	exe, err := os.Executable()
	testutil.Must(t, err)
	const rounds = 5
	var times []time.Duration
	for i := 0; i < rounds; i++ {
		cmd := exec.Command(exe, "-test.run=^TestFaultHelper$", "-test.count=1", "-test.timeout=90s")
		cmd.Env = append(os.Environ(), faultRoleEnv+"=parent-for-kill")
		stdout, err := cmd.StdoutPipe()
		testutil.Must(t, err)
		testutil.Must(t, cmd.Start())
		sc := bufio.NewScanner(stdout)
		pid := 0
		for sc.Scan() {
			if s, ok := strings.CutPrefix(sc.Text(), "OPENER "); ok {
				pid, _ = strconv.Atoi(s)
				break
			}
		}
		if pid == 0 {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("the helper did not report its opener's pid")
		}
		time.Sleep(20 * time.Millisecond)
		begin := time.Now()
		testutil.Must(t, cmd.Process.Kill())
		for !hostile.Exited(pid) && time.Since(begin) < 10*time.Second {
			time.Sleep(200 * time.Microsecond)
		}
		took := time.Since(begin)
		cmd.Wait()
		if !hostile.Exited(pid) {
			unix.Kill(pid, unix.SIGKILL)
			t.Fatalf("the opener %d still runs 10s after its parent was killed", pid)
		}
		times = append(times, took)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	hostile.Row(t, secLifecycle, fmt.Sprintf("parent killed with SIGKILL (%d rounds)", rounds),
		"the opener sees end of stream and exits within 100 ms",
		fmt.Sprintf("opener gone after %v median, %v max (from kill(2) to the opener's /proc entry gone or a zombie)",
			times[len(times)/2].Round(10*time.Microsecond), times[len(times)-1].Round(10*time.Microsecond)))
	bound := 2 * time.Second
	if hostile.Race {
		bound += time.Second // a race-detector binary sleeps 1s at exit
	}
	if max := times[len(times)-1]; max > bound {
		t.Errorf("the opener took %v to exit after its parent died", max)
	}
}
