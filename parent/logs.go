//go:build linux

package parent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

const (
	// maxLogLine caps one line of the opener's stderr; the rest of a longer
	// line is discarded, so a hostile or broken opener cannot make the
	// parent buffer without bound.
	maxLogLine = 64 << 10
	// tailLines and tailLineLen bound what ExitError carries.
	tailLines   = 10
	tailLineLen = 512
)

// logTail keeps the opener's last few warnings, errors and non-JSON lines
// (a Go panic, say) for error reports.
type logTail struct {
	mu    sync.Mutex
	lines []string
}

func (t *logTail) add(s string) {
	if len(s) > tailLineLen {
		s = s[:tailLineLen] + "…"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == tailLines {
		copy(t.lines, t.lines[1:])
		t.lines = t.lines[:tailLines-1]
	}
	t.lines = append(t.lines, s)
}

func (t *logTail) get() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.lines...)
}

// forwardLogs reads the opener's stderr until EOF and re-emits each line
// through log (the parent's logger, named "child") and, if not nil, h.
// Lines that are hclog JSON keep their level, message and fields; anything
// else (a Go panic, say) is emitted as is at info. No field's type is
// trusted.
func forwardLogs(r io.Reader, log hclog.Logger, h slog.Handler, tail *logTail) {
	br := bufio.NewReaderSize(r, 4096)
	for {
		line, err := readLine(br)
		if len(line) > 0 {
			emitLogLine(log, h, tail, line)
		}
		if err != nil {
			return
		}
	}
}

// readLine returns the next line without its newline, at most maxLogLine
// bytes of it; the rest of a longer line is read and dropped.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) <= maxLogLine {
			line = append(line, chunk...)
		} else if len(line) < maxLogLine {
			line = append(line, chunk[:maxLogLine-len(line)]...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return []byte(strings.TrimRight(string(line), "\r\n")), err
	}
}

// The keys hclog's JSON format uses for its own fields.
var hclogKeys = map[string]bool{"@level": true, "@message": true, "@timestamp": true, "@module": true, "@caller": true}

func emitLogLine(log hclog.Logger, h slog.Handler, tail *logTail, line []byte) {
	var m map[string]any
	if json.Unmarshal(line, &m) != nil || m == nil {
		tail.add(string(line))
		log.Info(string(line))
		emitSlog(h, hclog.Info, string(line), nil)
		return
	}
	level := hclog.Info
	if s, ok := m["@level"].(string); ok {
		if l := hclog.LevelFromString(s); l != hclog.NoLevel {
			level = l
		}
	}
	msg, ok := m["@message"].(string)
	if !ok {
		msg = fmt.Sprint(m["@message"])
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		if !hclogKeys[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	args := make([]any, 0, 2*len(keys))
	var text strings.Builder
	text.WriteString(level.String() + ": " + msg)
	for _, k := range keys {
		args = append(args, k, m[k])
		fmt.Fprintf(&text, " %s=%v", k, m[k])
	}
	// Only what might explain a failure is kept for ExitError: the routine
	// info and debug lines would push the opener's last words out.
	if level >= hclog.Warn {
		tail.add(text.String())
	}
	log.Log(level, msg, args...)
	emitSlog(h, level, msg, args)
}

// slogLevel maps hclog's levels to slog's; trace is below debug, as
// slog suggests for finer levels.
func slogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// emitSlog sends one opener line to h, if any, with the attribute
// module=child so that it can be told from the program's own lines. args
// alternate keys and values, as for hclog.
func emitSlog(h slog.Handler, level hclog.Level, msg string, args []any) {
	if h == nil {
		return
	}
	ctx := context.Background()
	lvl := slogLevel(level)
	if !h.Enabled(ctx, lvl) {
		return
	}
	rec := slog.NewRecord(time.Now(), lvl, msg, 0)
	rec.AddAttrs(slog.String("module", "child"))
	for i := 0; i+1 < len(args); i += 2 {
		k, _ := args[i].(string)
		rec.AddAttrs(slog.Any(k, args[i+1]))
	}
	// A handler that fails has nowhere better to report it than itself.
	_ = h.Handle(ctx, rec)
}

// slogMinLevel is the most verbose hclog level h wants, or hclog.Off.
func slogMinLevel(h slog.Handler) hclog.Level {
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if h.Enabled(context.Background(), slogLevel(l)) {
			return l
		}
	}
	return hclog.Off
}
