//go:build linux

package parent_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/parent"
	"github.com/privsep-go/privsep/policy"
)

// TestStartMissingRuleDir: Start refuses a policy whose tree rule names a
// directory that does not exist, with a *RuleDirError naming the rule and
// the directory (ENOENT), and leaves no descriptor behind; with optional=yes
// it starts and opens under the rule fail with ENOENT.
func TestStartMissingRuleDir(t *testing.T) {
	gone := filepath.Join(t.TempDir(), "gone")
	before := testutil.FDs(t, os.Getpid())
	_, err := parent.Start(context.Background(), parent.Config{Rules: []string{"/etc/hostname", gone + "/"}})
	var de *parent.RuleDirError
	if !errors.As(err, &de) {
		t.Fatalf("Start: got %v, want a *RuleDirError", err)
	}
	if de.Rule != "r:"+gone+"/" || de.Dir != gone || de.Errno != syscall.ENOENT {
		t.Errorf("RuleDirError: got %+v, want rule r:%s/, dir %s, ENOENT", de, gone, gone)
	}
	if !strings.Contains(err.Error(), gone) || !strings.Contains(err.Error(), "optional=yes") {
		t.Errorf("message should name the directory and the way out: %v", err)
	}
	if got, err := testutil.SettledFDs(os.Getpid(), before); err != nil || got != before {
		t.Errorf("descriptors: %d before, %d after (%v):\n%s", before, got, err, testutil.FDList(os.Getpid()))
	}

	r, err := policy.ParseLine("r:"+gone+"/ optional=yes", nil)
	testutil.Must(t, err)
	pol, err := policy.New([]policy.Rule{r})
	testutil.Must(t, err)
	o := start(t, parent.Config{Policy: pol})
	if _, err := read(t, o, gone+"/x"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("open under an optional missing dir: got %v, want ENOENT", err)
	}
}
