//go:build linux

package parent_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/parent"
)

// TestRefusedErrorPredicates: a refusal's reason can be read without
// package protocol, and the predicates agree with ErrDenied.
func TestRefusedErrorPredicates(t *testing.T) {
	dir := t.TempDir()
	testutil.Must(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	o := start(t, parent.Config{Rules: []string{dir + "/"}})
	ctx := context.Background()
	check := func(path string, want func(*parent.RefusedError) bool, name string) {
		t.Helper()
		_, err := o.Open(ctx, path, os.O_RDONLY, 0)
		var re *parent.RefusedError
		if !errors.As(err, &re) || !want(re) {
			t.Errorf("Open(%s): got %v, want a *RefusedError whose %s() is true", path, err, name)
			return
		}
		n := 0
		for _, p := range []bool{re.Denied(), re.Escape(), re.FileType(), re.Links(), re.Directory(), re.BadRequest(), re.Protocol(), re.Limit()} {
			if p {
				n++
			}
		}
		if n != 1 {
			t.Errorf("Open(%s): %d predicates true for reason %v, want 1", path, n, re.Reason)
		}
	}
	check("/etc/hostname", (*parent.RefusedError).Denied, "Denied")
	check(filepath.Join(dir, "sub"), (*parent.RefusedError).Directory, "Directory")
	check(dir+"/a/../b", (*parent.RefusedError).BadRequest, "BadRequest")
}

// TestExitErrorEmbedsProcessState: as in exec.ExitError, the process
// state's methods are the error's own.
func TestExitErrorEmbedsProcessState(t *testing.T) {
	o := start(t, parent.Config{Rules: []string{"/etc/hostname"}})
	p, err := os.FindProcess(o.PID())
	testutil.Must(t, err)
	defer p.Release() // FindProcess holds a pidfd; later tests count descriptors
	testutil.Must(t, p.Kill())
	<-o.Done()
	var ee *parent.ExitError
	if !errors.As(o.Err(), &ee) || ee.ProcessState == nil {
		t.Fatalf("Err after a kill: %v, want an *ExitError with a process state", o.Err())
	}
	if ee.Exited() || ee.Success() || ee.Pid() != o.PID() || ee.ExitCode() != -1 {
		t.Errorf("ExitError of a killed opener: Exited %v Success %v Pid %d (want %d) ExitCode %d", ee.Exited(), ee.Success(), ee.Pid(), o.PID(), ee.ExitCode())
	}
	if (&parent.ExitError{}).ExitCode() != -1 {
		t.Error("ExitCode of an ExitError without a process state: want -1")
	}
}

// TestPolicySourceMatchesLoadPolicy: the named form and the deprecated
// positional one compile the same policy.
func TestPolicySourceMatchesLoadPolicy(t *testing.T) {
	f := filepath.Join(t.TempDir(), "p.policy")
	testutil.Must(t, os.WriteFile(f, []byte("r:/srv/a/\n"), 0o644))
	a, err := parent.PolicySource{Files: []string{f}, Rules: []string{"/srv/b"}, Listen: []string{"unix:/run/x.sock"}}.Policy()
	testutil.Must(t, err)
	b, err := parent.LoadPolicy([]string{f}, []string{"/srv/b"}, "unix:/run/x.sock")
	testutil.Must(t, err)
	if len(a.Strings()) != 3 || len(a.Strings()) != len(b.Strings()) {
		t.Fatalf("PolicySource: %q; LoadPolicy: %q; want the same 3 rules", a.Strings(), b.Strings())
	}
	for i := range a.Strings() {
		if a.Strings()[i] != b.Strings()[i] {
			t.Errorf("rule %d: %q vs %q", i, a.Strings()[i], b.Strings()[i])
		}
	}
	if _, err := (parent.PolicySource{Files: []string{f}}).ServerPolicy(); err != nil {
		t.Errorf("ServerPolicy: %v", err)
	}
}
