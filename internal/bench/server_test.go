//go:build linux

package bench_test

import (
	"context"
	"errors"
	"math"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/privsep-go/privsep/internal/bench"
	"github.com/privsep-go/privsep/internal/testutil"
)

// TestMeasureServer takes a small server-mode run: every session served,
// figures that are figures, and nothing of the run left behind, neither
// descriptors (both ends of every session, the listener, the target's
// directory) nor goroutines (Serve's and its sessions').
func TestMeasureServer(t *testing.T) {
	n := 200
	if testing.Short() {
		n = 50
	}
	fds, goroutines := leftBehind(t)
	var log strings.Builder
	rep, err := bench.MeasureServer(context.Background(), bench.ServerOptions{Sessions: n, Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if rep.Sessions != n || rep.Served != n {
		t.Errorf("%d sessions, %d served (first not: %q); want %d and %d", rep.Sessions, rep.Served, rep.FirstFailure, n, n)
	}
	for name, v := range map[string]float64{
		"heap+stacks per session": rep.HeapStackBytesPerSession,
		"RSS per session":         rep.RSSBytesPerSession,
		"connect time":            float64(rep.ConnectNs),
		"open after idling":       rep.AgainNsPerOp,
	} {
		if !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("%s = %v, want a positive finite figure", name, v)
		}
	}
	if !strings.Contains(log.String(), "privsep bench: server mode: open after idling") {
		t.Errorf("no progress line for the open after idling:\n%s", log.String())
	}
	fds(t)
	goroutines(t)
}

// TestMeasureServerErrors: no sessions is an error, and a cancelled
// context stops the run before its first session, cleaning up.
func TestMeasureServerErrors(t *testing.T) {
	for _, n := range []int{0, -1} {
		if _, err := bench.MeasureServer(context.Background(), bench.ServerOptions{Sessions: n}); err == nil {
			t.Errorf("MeasureServer with %d sessions: no error", n)
		}
	}
	fds, goroutines := leftBehind(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := bench.MeasureServer(ctx, bench.ServerOptions{Sessions: 10})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "session 1") {
		t.Errorf("MeasureServer with a cancelled context: got %v, want context.Canceled before session 1", err)
	}
	fds(t)
	goroutines(t)
}

// TestMeasureServerClients: clients other than the default are used,
// what they say of the open after idling is the report's, and they are
// closed, also when they fail.
func TestMeasureServerClients(t *testing.T) {
	fds, goroutines := leftBehind(t)
	var made []*wrappedClients
	opt := bench.ServerOptions{Sessions: 20, Clients: func(sock, file string) (bench.SessionClients, error) {
		cs, err := bench.NewServerClients(sock, file)
		if err != nil {
			return nil, err
		}
		w := &wrappedClients{ServerClients: cs, lose: len(made) == 1}
		made = append(made, w)
		return w, nil
	}}
	rep, err := bench.MeasureServer(context.Background(), opt)
	if err != nil || rep.Served != 20 || rep.FirstFailure != "" {
		t.Errorf("MeasureServer with clients of its caller: %+v, %v; want all 20 served", rep, err)
	}
	rep, err = bench.MeasureServer(context.Background(), opt)
	if err != nil || rep.Served != 19 || rep.FirstFailure != "session 7: lost" {
		t.Errorf("MeasureServer with clients that lose one: %+v, %v; want 19 served, session 7 lost", rep, err)
	}
	opt.Sessions = 1 << 30 // more than any descriptor limit: fails before the clients are made
	var lim *bench.FDLimitError
	if _, err := bench.MeasureServer(context.Background(), opt); !errors.As(err, &lim) || lim.Need != 1<<30+256 {
		t.Errorf("MeasureServer with %d sessions: got %v, want an *FDLimitError for %d descriptors", opt.Sessions, err, 1<<30+256)
	}
	for i, w := range made {
		if !w.closed {
			t.Errorf("clients %d not closed", i+1)
		}
	}
	if len(made) != 2 {
		t.Errorf("clients made %d times, want 2", len(made))
	}
	fds(t)
	goroutines(t)
}

// wrappedClients are ServerClients that record their Close and, with
// lose, report one session fewer served.
type wrappedClients struct {
	*bench.ServerClients
	lose, closed bool
}

func (w *wrappedClients) Again(ctx context.Context) (int, string, error) {
	served, first, err := w.ServerClients.Again(ctx)
	if w.lose {
		return served - 1, "session 7: lost", err
	}
	return served, first, err
}

func (w *wrappedClients) Close() error {
	w.closed = true
	return w.ServerClients.Close()
}

// leftBehind counts this process's descriptors and goroutines now, and
// returns checks that they are back to these counts, each waiting up to
// about a second for them to settle: Serve's sessions finish, and close
// their ends, as they notice their clients are gone.
func leftBehind(t *testing.T) (fds, goroutines func(*testing.T)) {
	t.Helper()
	runtime.GC()
	nfd := testutil.FDs(t, 0)
	ngo := runtime.NumGoroutine()
	fds = func(t *testing.T) {
		t.Helper()
		runtime.GC() // a descriptor only a finalizer closes counts as leaked
		if got := testutil.FDsSettled(t, 0, nfd); got != nfd {
			t.Errorf("descriptors: %d before, %d after\n%s", nfd, got, testutil.FDList(0))
		}
	}
	goroutines = func(t *testing.T) {
		t.Helper()
		got := runtime.NumGoroutine()
		for i := 0; i < 100 && got > ngo; i++ {
			time.Sleep(10 * time.Millisecond)
			got = runtime.NumGoroutine()
		}
		if got > ngo {
			buf := make([]byte, 1<<20)
			t.Errorf("goroutines: %d before, %d after\n%s", ngo, got, buf[:runtime.Stack(buf, true)])
		}
	}
	return fds, goroutines
}

// TestMeasureServerChildClients holds the sessions in a child process, this
// test binary running TestServerClientsChild, as a run whose descriptor
// limit does not allow both ends here does.
func TestMeasureServerChildClients(t *testing.T) {
	fds, goroutines := leftBehind(t)
	var log strings.Builder
	opt := bench.ServerOptions{Sessions: 30, Log: &log, Clients: bench.ChildClients("-test.run=^TestServerClientsChild$")}
	rep, err := bench.MeasureServer(context.Background(), opt)
	if err != nil || rep.Served != 30 || rep.Sessions != 30 {
		t.Fatalf("MeasureServer with clients in a child: %+v, %v; want all 30 served\n%s", rep, err, log.String())
	}
	fds(t)
	goroutines(t)
}

// TestServerClientsChild is the child of TestMeasureServerChildClients.
func TestServerClientsChild(t *testing.T) {
	if !bench.IsServerClients() {
		t.Skip("the clients' process of TestMeasureServerChildClients")
	}
	if err := bench.RunServerClients(context.Background(), os.Stdin, os.Stdout); err != nil {
		t.Fatal(err)
	}
}
