//go:build linux

// An external test: it measures with internal/bench, which imports this
// package.
package server_test

import (
	"errors"
	"os"
	"strconv"
	"testing"

	"github.com/privsep-go/privsep/internal/bench"
)

// loadSessionsEnv overrides how many sessions BenchmarkServerSessions
// holds (default 10000; 200 with -short).
const loadSessionsEnv = "PRIVSEP_LOAD_SESSIONS"

// BenchmarkServerSessions holds many sessions at once against one server in
// this process, clients over the unix socket: every client says hello and
// has one file opened, all of them stay connected, idle, and then every
// one of them has a second file opened. It reports what an idle session
// costs the server, as bench.MeasureServer measures it for privsep bench.
// The clients are in this process too when it may hold a descriptor for
// both ends of every session (RLIMIT_NOFILE, raised if need be); else
// they run in a child process (TestLoadClients), and when even that
// cannot be, the benchmark skips. Run it with -benchtime 1x: one
// iteration is the whole load. No timing is asserted.
func BenchmarkServerSessions(b *testing.B) {
	n := 10000
	if testing.Short() {
		n = 200
	}
	if v := os.Getenv(loadSessionsEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("%s=%q: want a positive count", loadSessionsEnv, v)
		}
	}
	for range b.N {
		rep := measureServer(b, n)
		if rep.Served != rep.Sessions {
			b.Fatalf("%d of %d sessions served after idling; the first not: %s", rep.Served, rep.Sessions, rep.FirstFailure)
		}
		b.ReportMetric(float64(rep.Sessions), "sessions")
		b.ReportMetric(rep.HeapStackBytesPerSession, "heap+stack-B/session")
		b.ReportMetric(rep.RSSBytesPerSession, "rss-B/session")
	}
}

// measureServer runs bench.MeasureServer with n sessions, their clients
// in this process if it may hold their descriptors, else in a child: this
// test binary running TestLoadClients.
func measureServer(b *testing.B, n int) *bench.ServerReport {
	b.Helper()
	rep, err := bench.MeasureServerAnywhere(b.Context(), bench.ServerOptions{Sessions: n, Log: b.Output()}, "-test.run=^TestLoadClients$", "-test.v")
	var lim *bench.FDLimitError
	if errors.As(err, &lim) {
		b.Skip(err)
	}
	if err != nil {
		b.Fatal(err)
	}
	return rep
}

// TestLoadClients is the child process of a BenchmarkServerSessions whose
// clients this process may not hold (bench.ChildClients).
func TestLoadClients(t *testing.T) {
	if !bench.IsServerClients() {
		t.Skip("the clients of BenchmarkServerSessions, when it runs them in a child process")
	}
	if err := bench.RunServerClients(t.Context(), os.Stdin, os.Stdout); err != nil {
		t.Fatal(err)
	}
}
