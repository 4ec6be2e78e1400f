// Package bench measures what the opener costs: the harness behind
// "privsep bench" and the benchmarks of package parent, so that both take
// their figures the same way.
//
// It holds the operations both time (an Open+Close through an opener, a
// batch, 16 concurrent callers, a start to the first descriptor, a bare
// re-exec), the readings of /proc they take besides the clock (CPU time
// from schedstat and getrusage, resident size), the build and runs of the
// C reference programs of shared/bench, and the interleaved rounds of
// "privsep bench" (Run), whose Report is the command's JSON.
//
// It is not part of privsep's API and not for production code: it starts
// openers, runs gcc, re-executes the running binary and reads /proc, and
// its figures are only worth comparing as ratios taken in one run.
//
// # Re-executing the running binary
//
// BareStart times the floor of starting an opener: the same binary,
// re-executed, exiting before it does anything; BareStartRSS measures its
// resident size just before it exits. The binary must cooperate:
// privsep's command line (cli.Main) returns first thing when IsBareStart
// (after FinishBareStart), and the parent tests' TestMain checks a
// variable of their own; BareStart is told which. The server-mode figure
// may hold its clients in a re-executed child as well (ChildClients),
// whose main calls RunServerClients when IsServerClients.
//
// # Counting
//
// The counted figures (system calls and context switches per operation)
// use perf events, one counter per thread, inherited by the threads and
// processes it starts; they need tracefs and the right to trace both
// processes.
package bench
