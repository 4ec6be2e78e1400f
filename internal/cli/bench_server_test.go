//go:build linux

package cli

import (
	"regexp"
	"strings"
	"testing"

	"github.com/privsep-go/privsep/internal/bench"
)

// TestServerRows: the server-mode section judges its targets: 10,000
// sessions every one served, and 16 KiB per idle session of heap and
// stacks and of RSS; a run of fewer sessions says so rather than failing.
func TestServerRows(t *testing.T) {
	met := bench.ServerReport{Sessions: 10000, Served: 10000, HeapStackBytesPerSession: 9000,
		RSSBytesPerSession: 16 << 10, ConnectNs: 1.5e9, AgainNsPerOp: 25000}
	notMet := bench.ServerReport{Sessions: 10000, Served: 9999, FirstFailure: "session 17: EOF",
		HeapStackBytesPerSession: 16<<10 + 1, RSSBytesPerSession: 20000, ConnectNs: 1.5e9, AgainNsPerOp: 25000}
	few := met
	few.Sessions, few.Served = 200, 200
	fewNotServed := few
	fewNotServed.Served = 199
	for _, c := range []struct {
		name string
		r    bench.ServerReport
		want map[string]string // row name: the rest of its line
	}{
		{"met", met, map[string]string{
			"sessions held, then served after idling": "10000 / 10000 >= 10000, all met",
			"heap+stacks per idle session":            "8.79 KiB <= 16 KiB met",
			"RSS per idle session":                    "16.00 KiB <= 16 KiB met",
			"connecting all, hello and first open":    "1500.00 ms",
			"open after idling, per session":          "25.00 µs/op",
		}},
		{"not met", notMet, map[string]string{
			"sessions held, then served after idling": "10000 / 9999 >= 10000, all not met",
			"first not served:":                       "session 17: EOF",
			"heap+stacks per idle session":            "16.00 KiB <= 16 KiB not met",
			"RSS per idle session":                    "19.53 KiB <= 16 KiB not met",
		}},
		{"fewer asked for", few, map[string]string{
			"sessions held, then served after idling": "200 / 200 >= 10000, all not judged: 200 asked for",
		}},
		{"fewer asked for, not served", fewNotServed, map[string]string{
			"sessions held, then served after idling": "200 / 199 >= 10000, all not met",
		}},
		{"no growth", bench.ServerReport{Sessions: 10000, Served: 10000, RSSBytesPerSession: -3000}, map[string]string{
			"heap+stacks per idle session": "0.00 KiB <= 16 KiB not judged: no growth measured",
			"RSS per idle session":         "-2.93 KiB <= 16 KiB not judged: no growth measured",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tw := &tableWriter{}
			serverRows(tw, &c.r)
			out := tw.String()
			if !strings.Contains(out, "\nServer mode") {
				t.Errorf("no Server mode heading in:\n%s", out)
			}
			rows := serverRowsByName(out)
			for name, want := range c.want {
				got, ok := rows[name]
				if !ok {
					t.Errorf("no %q row in:\n%s", name, out)
				} else if got != want {
					t.Errorf("row %q: got %q, want %q", name, got, want)
				}
			}
		})
	}
}

// serverRowsByName splits the section's rows into their names (the
// known ones) and the rest of their line, spaces squeezed.
func serverRowsByName(out string) map[string]string {
	names := []string{"sessions held, then served after idling", "first not served:", "heap+stacks per idle session",
		"RSS per idle session", "connecting all, hello and first open", "open after idling, per session"}
	space := regexp.MustCompile(`\s+`)
	rows := make(map[string]string)
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		for _, name := range names {
			if rest, ok := strings.CutPrefix(l, name); ok {
				rows[name] = space.ReplaceAllString(strings.TrimSpace(rest), " ")
			}
		}
	}
	return rows
}
