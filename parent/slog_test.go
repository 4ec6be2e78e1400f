//go:build linux

package parent_test

import (
	"context"
	"fmt"
	"github.com/privsep-go/privsep/internal/testutil"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/privsep-go/privsep/parent"
)

// recordHandler keeps the records it is given.
type recordHandler struct {
	mu    sync.Mutex
	level slog.Level
	recs  []slog.Record
}

func (h *recordHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func attrs(r slog.Record) map[string]string {
	m := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		return true
	})
	return m
}

// denyThenGrant makes the opener log one denial (secret) and one grant
// (root/a.txt), the lines the log tests look for, and closes it so that
// every line has arrived.
func denyThenGrant(t *testing.T, o *parent.Opener, root, secret string) {
	t.Helper()
	if _, err := read(t, o, secret); err == nil {
		t.Fatal("read of a denied path succeeded")
	}
	if _, err := read(t, o, root+"/a.txt"); err != nil {
		t.Fatal(err)
	}
	testutil.Must(t, o.Close())
}

// TestSlogHandler: the opener's lines reach Config.SlogHandler with their
// level, message and fields, marked module=child, and the opener logs at the
// handler's level (debug here, with no hclog logger at all).
func TestSlogHandler(t *testing.T) {
	root, secret := tree(t)
	h := &recordHandler{level: slog.LevelDebug}
	o := start(t, parent.Config{Rules: []string{root + "/"}, SlogHandler: h})
	denyThenGrant(t, o, root, secret)
	h.mu.Lock()
	defer h.mu.Unlock()
	var denied, granted bool
	for _, r := range h.recs {
		a := attrs(r)
		if a["module"] != "child" {
			t.Errorf("record %q: module=%q, want child", r.Message, a["module"])
		}
		switch {
		case r.Level == slog.LevelWarn && a["path"] == secret && a["reason"] == "denied by policy":
			denied = true
		case r.Level == slog.LevelDebug && a["path"] == root+"/a.txt" && a["rule"] == "r:"+root+"/":
			granted = true
		}
	}
	if !denied || !granted {
		for _, r := range h.recs {
			t.Logf("%v %q %v", r.Level, r.Message, attrs(r))
		}
		t.Errorf("records: denial at warn %v, grant at debug %v; want both", denied, granted)
	}
}

// A program that logs with log/slog gets the opener's lines through its
// own handler: here the denial of a path outside the policy, at warn.
func ExampleConfig_slogHandler() {
	dir, _ := os.MkdirTemp("", "privsep-example")
	defer os.RemoveAll(dir)
	h := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelWarn,
		// Keep the example's output stable: only the level, the message,
		// the module and the path.
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.LevelKey, slog.MessageKey, "module":
				return a
			case "path":
				return slog.String("path", filepath.Base(a.Value.String()))
			}
			return slog.Attr{}
		},
	})
	op, err := parent.Start(context.Background(), parent.Config{Rules: []string{dir + "/"}, SlogHandler: h})
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := op.Open(context.Background(), "/etc/shadow", os.O_RDONLY, 0); err == nil {
		fmt.Println("opened?")
	}
	op.Close()
	// Output:
	// level=WARN msg=denied module=child path=shadow
}
