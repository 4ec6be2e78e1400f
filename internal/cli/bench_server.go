//go:build linux

package cli

import (
	"fmt"

	"github.com/privsep-go/privsep/internal/bench"
)

// The server-mode targets: this many sessions held at once with every
// request served, and at most this much memory per idle session.
const (
	targetSessions     = 10000
	targetSessionBytes = 16 << 10
)

// serverRows writes the "Server mode" section of the --dev table.
func serverRows(t *tableWriter, s *bench.ServerReport) {
	t.w("\n%-43s%14s   %s\n", "Server mode (a serve loop in this process)", "measured", "target")
	t.serverRow("sessions held, then served after idling", fmt.Sprintf("%d / %d", s.Sessions, s.Served),
		fmt.Sprintf(">= %d, all", targetSessions), sessionsVerdict(s))
	if s.Served != s.Sessions && s.FirstFailure != "" {
		t.w("    first not served: %s\n", s.FirstFailure)
	}
	t.serverRow("heap+stacks per idle session", sessionKiB(s.HeapStackBytesPerSession),
		fmt.Sprintf("<= %d KiB", targetSessionBytes>>10), sessionBytesVerdict(s.HeapStackBytesPerSession))
	t.serverRow("RSS per idle session", sessionKiB(s.RSSBytesPerSession),
		fmt.Sprintf("<= %d KiB", targetSessionBytes>>10), sessionBytesVerdict(s.RSSBytesPerSession))
	t.serverRow("connecting all, hello and first open", bench.FormatNs(float64(s.ConnectNs), "ns"), "", "")
	t.serverRow("open after idling, per session", bench.FormatNs(s.AgainNsPerOp, "ns/op"), "", "")
}

// serverRow writes a row of the server-mode section; a row without a
// target has no verdict either.
func (t *tableWriter) serverRow(name, value, target, verdict string) {
	if target == "" {
		t.w("  %-40s %14s\n", name, value)
		return
	}
	t.w("  %-40s %14s   %-13s  %s\n", name, value, target, verdict)
}

// sessionsVerdict judges the sessions target. Holding fewer sessions
// than the target says nothing of holding the target, so such a run is
// not judged; but a session not served fails it at any number.
func sessionsVerdict(s *bench.ServerReport) string {
	switch {
	case s.Served != s.Sessions:
		return metOrNot(false)
	case s.Sessions < targetSessions:
		return fmt.Sprintf("not judged: %d asked for", s.Sessions)
	}
	return metOrNot(true)
}

// sessionBytesVerdict judges a per-session memory figure. One that is
// not positive is a reading disturbed by memory freed meanwhile, not a
// session that costs nothing: it is not judged.
func sessionBytesVerdict(v float64) string {
	if !(v > 0) {
		return "not judged: no growth measured"
	}
	return metOrNot(v <= targetSessionBytes)
}

// sessionKiB writes a byte count in KiB.
func sessionKiB(v float64) string { return fmt.Sprintf("%.2f KiB", v/(1<<10)) }
