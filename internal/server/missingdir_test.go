//go:build linux

package server

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/privsep-go/privsep/internal/opener"
	"github.com/privsep-go/privsep/policy"
)

// TestServeMissingRuleDir: a server policy with a tree rule whose directory
// does not exist makes Serve (and Check) refuse to start with an
// *opener.MissingDirError naming the rule; optional=yes lets it start.
func TestServeMissingRuleDir(t *testing.T) {
	dir := t.TempDir()
	gone := filepath.Join(dir, "gone")
	scoped := func(line string) *policy.ScopedPolicy {
		r, err := policy.ParseLine(line, nil)
		if err != nil {
			t.Fatal(err)
		}
		p, err := policy.New([]policy.Rule{r})
		if err != nil {
			t.Fatal(err)
		}
		return policy.Unscoped(p)
	}
	bad := Config{Policies: scoped("r:" + gone + "/")}
	var me *opener.MissingDirError
	if err := Check(bad); !errors.As(err, &me) || me.Dir != gone || me.Rule != "r:"+gone+"/" || me.Errno != syscall.ENOENT {
		t.Fatalf("Check: got %v (%+v), want a MissingDirError for %s", err, me, gone)
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: filepath.Join(dir, "s"), Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	if err := Serve(context.Background(), ln, bad); !errors.As(err, &me) {
		t.Fatalf("Serve: got %v, want a MissingDirError", err)
	}
	if err := Check(Config{Policies: scoped("r:" + gone + "/ optional=yes")}); err != nil {
		t.Fatalf("Check with optional=yes: %v", err)
	}
}
