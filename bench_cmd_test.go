//go:build linux

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestBenchJSON runs a short privsep bench --json: one JSON object on
// stdout with every promised figure a positive number, progress on stderr.
// It checks that the command works, not how fast anything is.
func TestBenchJSON(t *testing.T) {
	r := privsep(t, nil, "bench", "--json", "--duration", "300ms", "--rounds", "1")
	checkCode(t, r, exitOK)
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	var got map[string]any
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s", err, r.stdout)
	}
	if dec.More() {
		t.Errorf("stdout holds more than one JSON value:\n%s", r.stdout)
	}
	for _, key := range []string{
		"direct_ns_per_op", "direct_os_ns_per_op", "single_ns_per_op", "concurrent16_ns_per_op", "batch64_ns_per_fd",
		"start_ns", "bare_start_ns", "start_close_ns", "child_rss_bytes", "bare_start_rss_bytes", "allocs_per_open",
		"single_cpu_ns_per_op", "concurrent16_cpu_ns_per_op", "batch64_cpu_ns_per_fd",
		"single_over_direct", "concurrent16_over_direct", "batch64_per_fd_over_direct", "batch64_per_fd_over_direct_os", "start_over_bare_start", "start_close_over_bare_start",
	} {
		v, ok := got[key]
		if !ok {
			t.Errorf("no %q in the JSON object", key)
			continue
		}
		if n, ok := v.(float64); !ok || !(n > 0) {
			t.Errorf("%q = %v, want a positive number", key, v)
		}
	}
	if _, ok := got["c_single_ns_per_op"]; ok {
		t.Errorf("C reference figures without --ref-dir: %v", got["c_single_ns_per_op"])
	}
	checkStderrContains(t, r, "privsep bench: round 1/1: 1 caller", "privsep bench: idle opener RSS")
	if strings.Contains(r.stdout, "privsep bench: round") {
		t.Errorf("progress on stdout:\n%s", r.stdout)
	}
}

// TestBenchUserTable runs a very short privsep bench as a user would: the
// figures against a direct open, rounded durations, memory in MiB, and no
// developer targets or C reference.
func TestBenchUserTable(t *testing.T) {
	r := privsep(t, nil, "bench", "--duration", "100ms", "--rounds", "1")
	checkCode(t, r, exitOK)
	for _, row := range []string{
		"direct open+close", "opener, 1 caller", "opener, 16 callers", "opener, batch of 64",
		"start to first file", "idle opener memory (RSS)", "MiB", "allocations per open", "/ direct",
	} {
		if !strings.Contains(r.stdout, row) {
			t.Errorf("the table has no %q:\n%s", row, r.stdout)
		}
	}
	for _, dev := range []string{"target", "not met", "met\n", "--ref-dir", "C opener", " MB"} {
		if strings.Contains(r.stdout, dev) {
			t.Errorf("the user table shows the developer's %q:\n%s", dev, r.stdout)
		}
	}
	// Durations are rounded to one decimal in their unit: no 666.666666ms.
	if m := regexp.MustCompile(`[0-9]\.[0-9]{2,}(ns|µs|ms|s)`).FindString(r.stdout); m != "" {
		t.Errorf("unrounded duration %q in:\n%s", m, r.stdout)
	}
	checkStderrContains(t, r, "privsep bench: round 1/1: 1 caller")
}

// TestBenchTable runs a very short privsep bench --dev and checks the
// table's rows, with the C reference when gcc and ../shared/bench are at
// hand.
func TestBenchTable(t *testing.T) {
	args := []string{"bench", "--dev", "--duration", "100ms", "--rounds", "1", "--count", "300", "--sessions", "40"}
	ref := ""
	if _, err := exec.LookPath("gcc"); err == nil {
		if abs, err := filepath.Abs(filepath.Join("..", "shared", "bench")); err == nil {
			if _, err := os.Stat(filepath.Join(abs, "broker_seqpacket.c")); err == nil {
				ref = abs
				args = append(args, "--ref-dir", ref)
			}
		}
	}
	r := privsep(t, nil, args...)
	checkCode(t, r, exitOK)
	rows := []string{
		"direct open+close", "opener, 1 caller", "opener, 16 callers", "opener, batch of 64",
		"start to first fd", "bare re-exec", "idle opener RSS", "allocations per open",
		"batch of 64 per fd / direct", "start to first fd / bare re-exec",
		"System calls and context switches", "Server mode", "of it anonymous", "PSS (shared pages divided)", "bare re-exec of this binary, RSS at exit", "sessions held, then served after idling", "40 / 40",
		"not judged: 40 asked for", "heap+stacks per idle session", "raw Go loop, 1 fd per round trip",
	}
	if os.Geteuid() == 0 {
		// Root may count: the rows, not a note saying why not.
		rows = append(rows, "opener, 1 caller (per op)", "opener, batch of 64 (per fd)")
	}
	if ref != "" {
		rows = append(rows, "C opener, 1 fd per round trip", "1 caller / C opener", "16-caller rate / C opener rate", "raw Go loop / C opener (baseline)")
	} else {
		t.Log("no gcc or ../shared/bench: the C reference rows are not checked")
	}
	for _, row := range rows {
		if !strings.Contains(r.stdout, row) {
			t.Errorf("the table has no %q row:\n%s", row, r.stdout)
		}
	}
}

// TestBenchServerClientsInChild runs the server-mode figure of privsep
// bench --dev under a descriptor limit too low for both ends of every
// session in one process: the clients move to a re-executed privsep
// (where CAP_SYS_RESOURCE cannot raise the limit back), and every session
// is still held and served.
func TestBenchServerClientsInChild(t *testing.T) {
	limited := func(c *exec.Cmd) {
		// 50 sessions: 356 descriptors in one process, 306 in each of two.
		c.Args = append([]string{"sh", "-c", `ulimit -n 330 && exec "$0" "$@"`}, c.Args...)
		c.Path = "/bin/sh"
	}
	r := privsep(t, limited, "bench", "--dev", "--duration", "50ms", "--rounds", "1", "--count", "0", "--sessions", "50")
	checkCode(t, r, exitOK)
	if !strings.Contains(r.stdout, "50 / 50") {
		t.Errorf("the table does not show 50 sessions held and served:\n%s\n%s", r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, "clients in a child process") {
		return
	}
	t.Logf("the clients stayed in this process: the limit was raised (CAP_SYS_RESOURCE)\n%s", r.stderr)
}

func TestBenchUsage(t *testing.T) {
	r := privsep(t, nil, "bench", "--help")
	checkHelp(t, r, "Usage: privsep bench")
	if !strings.Contains(r.stdout, "-json") {
		t.Errorf("bench --help: got %q, want it to name -json", r.stdout)
	}
	for _, args := range [][]string{
		{"bench", "--rounds", "0"},
		{"bench", "--duration", "-1s"},
		{"bench", "extra"},
		{"bench", "--no-such-flag"},
		{"bench", "--dev", "--count", "-1"},
		{"bench", "--dev", "--sessions", "-5"},
	} {
		r := privsep(t, nil, args...)
		checkCode(t, r, exitUsage)
		if r.stdout != "" {
			t.Errorf("privsep %q: stdout %q, want it empty", args, r.stdout)
		}
	}
	r = privsep(t, nil, "bench", "--ref-dir", t.TempDir(), "--duration", "10ms", "--rounds", "1")
	checkCode(t, r, exitFail)
	checkStderrContains(t, r, "--ref-dir")
}
