//go:build linux

package cli

import (
	"regexp"
	"strings"
	"testing"

	"github.com/privsep-go/privsep/internal/bench"
)

// TestBenchTargets: the developer table judges issue 13's targets, the CPU
// ones on one CPU and the wall-time ones on more, each at its bound.
func TestBenchTargets(t *testing.T) {
	report := func(cpus int, f func(r *bench.Report)) *bench.Report {
		r := &bench.Report{NumCPU: cpus, CSingleNsPerOp: 20000, AllocsPerOpen: 2, ChildRSSBytes: 3 << 20}
		f(r)
		return r
	}
	for _, c := range []struct {
		name string
		r    *bench.Report
		row  string // the row's name
		want string // its target and verdict, "" for no target
	}{
		{"pinned single at the bound", report(1, func(r *bench.Report) { r.SingleOverCSingle = 1.5 }), "1 caller / C opener", "<= 1.5x   met"},
		{"pinned single above", report(1, func(r *bench.Report) { r.SingleOverCSingle = 1.51 }), "1 caller / C opener", "<= 1.5x   not met"},
		{"unpinned single", report(2, func(r *bench.Report) { r.SingleOverCSingle = 1.2 }), "1 caller / C opener", "<= 1x   not met"},
		{"unpinned single CPU", report(2, func(r *bench.Report) { r.SingleCPUOverC = 1.2 }), "CPU: 1 caller / C opener", "<= 1.2x   met"},
		{"pinned single CPU has no target", report(1, func(r *bench.Report) { r.SingleCPUOverC = 9 }), "CPU: 1 caller / C opener", ""},
		{"pinned 16 callers", report(1, func(r *bench.Report) { r.Concurrent16RateOvC = 1.49 }), "16-caller rate / C opener rate", ">= 1.5x   not met"},
		{"unpinned 16 callers has no target", report(2, func(r *bench.Report) { r.Concurrent16RateOvC = 0.1 }), "16-caller rate / C opener rate", ""},
		{"batch CPU", report(1, func(r *bench.Report) { r.Batch64CPUOverC = 1.4 }), "CPU: batch of 64 per fd / C batch of 64", "<= 1.5x   met"},
		{"start", report(2, func(r *bench.Report) { r.StartOverBare = 1.3 }), "start to first fd / bare re-exec", "<= 1.25x   not met"},
		{"RSS met", report(1, func(*bench.Report) {}), "idle opener RSS", "<= 4 MiB  met"},
		{"RSS not met", report(1, func(r *bench.Report) { r.ChildRSSBytes = 4<<20 + 1 }), "idle opener RSS", "<= 4 MiB  not met"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := benchTable(c.r)
			var line string // the last row of that name: the ratios come last
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(strings.TrimSpace(l), c.row+" ") {
					line = l
				}
			}
			if line == "" {
				t.Fatalf("no %q row in:\n%s", c.row, out)
			}
			got := strings.TrimSpace(regexp.MustCompile(`^\s*`+regexp.QuoteMeta(c.row)+`\s+\S+( MiB)?\s*`).ReplaceAllString(line, ""))
			got = regexp.MustCompile(`\s+`).ReplaceAllString(got, " ")
			want := regexp.MustCompile(`\s+`).ReplaceAllString(c.want, " ")
			if got != want {
				t.Errorf("row %q: got target and verdict %q, want %q (line %q)", c.row, got, want, line)
			}
		})
	}
}
