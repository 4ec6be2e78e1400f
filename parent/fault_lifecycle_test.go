//go:build linux

package parent_test

// The lifecycle part of the fault suite (fault_test.go): the opener
// killed or stopped with calls in flight, Close racing calls, a reader
// cancelled while it waits in the kernel; each measured, and logged as a
// row of the reliability table.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/hostile"
	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/parent"
)

// TestFaultChildKilledLatency kills the opener with 100 calls in flight
// from 16 goroutines (stopped first, so that they are all pending, and
// busy, so that some are mid-flight) and measures how soon each returns.
// TestChildKilled checks the errors; this measures.
func TestFaultChildKilledLatency(t *testing.T) {
	for _, stopped := range []bool{true, false} {
		name := "busy"
		if stopped {
			name = "stopped"
		}
		t.Run(name, func(t *testing.T) {
			root, _ := tree(t)
			g0 := runtime.NumGoroutine()
			fds0 := testutil.FDs(t, 0)
			o, err := parent.Start(context.Background(), parent.Config{Rules: []string{root + "/"}})
			testutil.Must(t, err)
			pid := o.PID()
			if stopped {
				testutil.Must(t, hostile.Stop(pid, 5*time.Second))
			}
			const callers, calls = 16, 100
			var killedAt time.Time
			var mu sync.Mutex
			var lat []time.Duration
			var errs []error
			var wg sync.WaitGroup
			for g := 0; g < callers; g++ {
				n := calls / callers
				if g < calls%callers {
					n++
				}
				for i := 0; i < n; i++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							f, err := o.Open(context.Background(), root+"/a.txt", os.O_RDONLY, 0)
							end := time.Now()
							if err == nil {
								f.Close()
								continue // busy: go on until the kill
							}
							mu.Lock()
							errs = append(errs, err)
							if !killedAt.IsZero() {
								lat = append(lat, end.Sub(killedAt))
							}
							mu.Unlock()
							return
						}
					}()
				}
			}
			time.Sleep(100 * time.Millisecond)
			mu.Lock()
			killedAt = time.Now()
			testutil.Must(t, unix.Kill(pid, unix.SIGKILL))
			mu.Unlock()
			waitCalls(t, &wg, "the kill")
			closeErr := o.Close()
			g1 := settleGoroutines(g0)
			fds1 := settleSelfFDs(t, fds0)
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			bad := 0
			for _, err := range errs {
				var ee *parent.ExitError
				if !errors.As(err, &ee) || status(ee.ProcessState) != "signal killed" {
					bad++
				}
			}
			var maxLat, medLat time.Duration
			if len(lat) > 0 {
				maxLat, medLat = lat[len(lat)-1], lat[len(lat)/2]
			}
			hostile.Row(t, secLifecycle, fmt.Sprintf("opener SIGKILLed (%s) with %d calls in flight from %d goroutines", name, calls, callers),
				"every call returns *ExitError (signal killed) within 100 ms of the kill; no goroutine left",
				fmt.Sprintf("%d calls returned, %d not *ExitError(killed); latency median %v, max %v; Close: %s; goroutines %d→%d; fds %d→%d",
					len(errs), bad, medLat.Round(10*time.Microsecond), maxLat.Round(10*time.Microsecond), exitStatus(closeErr), g0, g1, fds0, fds1))
			if len(errs) != calls || bad > 0 {
				t.Errorf("%d calls returned, %d with the wrong error; first: %v", len(errs), bad, errs[0])
			}
			if maxLat > 2*time.Second {
				t.Errorf("slowest call returned %v after the kill", maxLat)
			}
			noneKept(t, fds0, fds1, g0, g1)
		})
	}
}

// TestFaultStoppedOpener stops the opener (SIGSTOP): calls with a deadline
// return context.DeadlineExceeded near their deadline, calls without one
// wait, and once the opener continues (SIGCONT) each waiting call gets its
// own file, and a goroutine that was making calls one after another goes on
// in order.
func TestFaultStoppedOpener(t *testing.T) {
	const n = 8
	o, readN := numberedOpener(t, 20)
	fds0 := testutil.FDs(t, 0)
	g0 := runtime.NumGoroutine()
	// A goroutine reading files 0..19 in order, stopped in the middle.
	seqDone := make(chan []string, 1)
	seqStarted := make(chan struct{})
	go func() {
		var got []string
		for i := 0; i < 20; i++ {
			if i == 1 {
				close(seqStarted)
			}
			s, err := readN(context.Background(), i)
			if err != nil {
				s = err.Error()
			}
			got = append(got, s)
		}
		seqDone <- got
	}()
	<-seqStarted
	testutil.Must(t, hostile.Stop(o.PID(), 5*time.Second))
	stoppedAt := time.Now()
	const deadline = 100 * time.Millisecond
	type result struct {
		i    int
		s    string
		err  error
		late time.Duration
	}
	waiting := make(chan result, n)
	timed := make(chan result, n)
	for i := 0; i < n; i++ {
		go func() {
			s, err := readN(context.Background(), i)
			waiting <- result{i: i, s: s, err: err}
		}()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			dl, _ := ctx.Deadline()
			s, err := readN(ctx, n+i)
			timed <- result{i: n + i, s: s, err: err, late: time.Since(dl)}
		}()
	}
	var lates []time.Duration
	badDeadline := 0
	for i := 0; i < n; i++ {
		r := <-timed
		if !errors.Is(r.err, context.DeadlineExceeded) {
			badDeadline++
		}
		lates = append(lates, r.late)
	}
	sort.Slice(lates, func(i, j int) bool { return lates[i] < lates[j] })
	early := len(waiting)
	testutil.Must(t, unix.Kill(o.PID(), unix.SIGCONT))
	contAt := time.Now()
	wrong := 0
	for i := 0; i < n; i++ {
		r := <-waiting
		if r.err != nil || r.s != strconv.Itoa(r.i) {
			wrong++
			t.Errorf("waiting call for file %d: got %q, %v", r.i, r.s, r.err)
		}
	}
	waitedFor := time.Since(contAt)
	seq := <-seqDone
	inOrder := true
	for i, s := range seq {
		if s != strconv.Itoa(i) {
			inOrder = false
			t.Errorf("sequential reader, file %d: got %q", i, s)
		}
	}
	// One more round trip, so that the abandoned calls' replies have been
	// read and their descriptors closed.
	if _, err := readN(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	fds1 := settleSelfFDs(t, fds0)
	g1 := settleGoroutines(g0)
	hostile.Row(t, secLifecycle, fmt.Sprintf("opener SIGSTOPped: %d calls with a %v deadline, %d without, one goroutine reading 20 files in sequence", n, deadline, n),
		"deadline calls return context.DeadlineExceeded at their deadline; the others wait, then each gets its own file after SIGCONT; the sequence goes on in order; abandoned replies closed",
		fmt.Sprintf("%d/%d DeadlineExceeded, overshoot median %v max %v (stopped %v before); %d returned early; after SIGCONT %d/%d got their own file, all within %v; sequence in order: %v; fds %d→%d; goroutines %d→%d",
			n-badDeadline, n, lates[len(lates)/2].Round(10*time.Microsecond), lates[len(lates)-1].Round(10*time.Microsecond), contAt.Sub(stoppedAt).Round(time.Millisecond),
			early, n-wrong, n, waitedFor.Round(10*time.Microsecond), inOrder, fds0, fds1, g0, g1))
	if badDeadline > 0 {
		t.Errorf("%d deadline calls did not return DeadlineExceeded", badDeadline)
	}
	if lates[len(lates)-1] > time.Second {
		t.Errorf("a deadline call returned %v after its deadline", lates[len(lates)-1])
	}
	if early > 0 {
		t.Errorf("%d calls without a deadline returned while the opener was stopped", early)
	}
	noneKept(t, fds0, fds1, g0, g1)
}

// TestFaultCloseRaces measures Close with calls in flight, two Closes at
// once, and calls after Close. TestCloseLifecycle and
// TestCloseWithCallsInFlight check the results; this adds the timings.
func TestFaultCloseRaces(t *testing.T) {
	root, _ := tree(t)
	g0, fds0 := runtime.NumGoroutine(), testutil.FDs(t, 0)
	o, err := parent.Start(context.Background(), parent.Config{Rules: []string{root + "/"}})
	testutil.Must(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var lastReturn time.Time
	ok, closed, other := 0, 0, 0
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				f, err := o.Open(context.Background(), root+"/a.txt", os.O_RDONLY, 0)
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case err == parent.ErrClosed:
					closed++
				default:
					other++
				}
				mu.Unlock()
				if err != nil {
					mu.Lock()
					if now := time.Now(); now.After(lastReturn) {
						lastReturn = now
					}
					mu.Unlock()
					return
				}
				f.Close()
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	errs := make(chan error, 2)
	begin := time.Now()
	for i := 0; i < 2; i++ {
		go func() { errs <- o.Close() }()
	}
	e1, e2 := <-errs, <-errs
	closeTook := time.Since(begin)
	wg.Wait()
	callsTook := lastReturn.Sub(begin)
	b2 := time.Now()
	_, openErr := o.Open(context.Background(), root+"/a.txt", os.O_RDONLY, 0)
	_, batchErr := o.OpenBatch(context.Background(), []parent.Request{{Path: root + "/a.txt"}})
	third := o.Close()
	afterTook := time.Since(b2)
	g1, fds1 := settleGoroutines(g0), settleSelfFDs(t, fds0)
	oneNil := (e1 == nil) != (e2 == nil) && (e1 == parent.ErrClosed || e2 == parent.ErrClosed)
	hostile.Row(t, secLifecycle, "Close with 16 goroutines calling; a second Close at the same time; Open, OpenBatch and Close after Close",
		"one Close returns nil, the other ErrClosed; in-flight calls succeed or return ErrClosed; later calls return ErrClosed at once; nothing kept",
		fmt.Sprintf("Closes: %v, %v after %v; calls: %d ok, %d ErrClosed, %d other, the last returned %v after Close began; after Close: %v, %v, %v in %v; goroutines %d→%d; fds %d→%d",
			e1, e2, closeTook.Round(time.Microsecond), ok, closed, other, callsTook.Round(time.Microsecond), openErr, batchErr, third, afterTook.Round(time.Microsecond), g0, g1, fds0, fds1))
	if !oneNil {
		t.Errorf("two Closes: %v and %v, want nil and ErrClosed", e1, e2)
	}
	if other > 0 {
		t.Errorf("%d calls racing Close returned something other than success or ErrClosed", other)
	}
	if openErr != parent.ErrClosed || batchErr != parent.ErrClosed || third != parent.ErrClosed {
		t.Errorf("after Close: %v, %v, %v; want ErrClosed", openErr, batchErr, third)
	}
	noneKept(t, fds0, fds1, g0, g1)
}

// TestFaultCancelReader cancels, with a context that has no deadline, a
// caller that holds the reading role while the opener is stopped, so that
// its reply cannot come: the reader waits in the kernel, not in the
// runtime's poller, and must still return context.Canceled (within
// cancelPoll), hand the role on, and leave the connection in step. The
// reply that arrives once the opener runs again is closed by the next
// reader, and a caller with a context that cannot end (the blocking
// recvmsg) gets its own file.
func TestFaultCancelReader(t *testing.T) {
	o, open := numberedOpener(t, 2)
	fds0 := testutil.FDs(t, 0)
	testutil.Must(t, hostile.Stop(o.PID(), 5*time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		_, err := open(ctx, 0)
		got <- err
	}()
	time.Sleep(50 * time.Millisecond) // let it send and take the reading role
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Errorf("the cancelled reader returned %v, want context.Canceled", err)
	}
	testutil.Must(t, unix.Kill(o.PID(), unix.SIGCONT))
	for i := 0; i < 2; i++ {
		if s, err := open(context.Background(), i); err != nil || s != strconv.Itoa(i) {
			t.Fatalf("after the cancelled read, file %d: %q, %v", i, s, err)
		}
	}
	if fds := settleSelfFDs(t, fds0); fds != fds0 {
		t.Errorf("descriptors %d→%d: the abandoned reply's descriptor was not closed", fds0, fds)
	}
}
