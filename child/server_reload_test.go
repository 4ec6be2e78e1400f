//go:build linux

package child_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/child"
	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/policy"
)

// TestServerReload: ServerConfig.Reload gives new sessions the new policy,
// leaves sessions in progress theirs, and keeps the old policy (leaking no
// descriptor) when the new one cannot be prepared.
func TestServerReload(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	testutil.Must(t, os.WriteFile(a, []byte("a"), 0o644))
	testutil.Must(t, os.WriteFile(b, []byte("b"), 0o644))
	unscoped := func(rules ...string) *policy.ScopedPolicy {
		pol, err := policy.Parse(rules)
		testutil.Must(t, err)
		return policy.Unscoped(pol)
	}
	reload := make(chan child.ServerReload)
	s := serveTest(t, child.ServerConfig{Reload: reload, Policies: unscoped(a)})
	send := func(p *policy.ScopedPolicy) error {
		done := make(chan error, 1)
		reload <- child.ServerReload{Policies: p, Done: done}
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("no answer to the reload")
		}
		return nil
	}
	allowed := func(p *peer, id uint32, path string) bool {
		fd, _ := p.open(id, path, unix.O_RDONLY)
		if fd >= 0 {
			unix.Close(fd)
		}
		return fd >= 0
	}
	old := dialRaw(t, s.path)
	old.hello()
	if allowed(old, 1, b) {
		t.Fatalf("%s allowed before the reload", b)
	}

	// A policy that cannot be prepared: a directory that is the server's
	// own /proc directory.
	link := filepath.Join(dir, "me")
	testutil.Must(t, os.Symlink("/proc/self", link))
	fds := testutil.FDs(t, os.Getpid())
	err := send(unscoped(b, link+"/"))
	var own *child.OwnProcessError
	if !errors.As(err, &own) {
		t.Errorf("reload with %s/: got %v, want an *OwnProcessError", link, err)
	}
	if got := testutil.FDs(t, os.Getpid()); got != fds {
		t.Errorf("descriptors: %d before the failed reload, %d after", fds, got)
	}
	p := dialRaw(t, s.path)
	p.hello()
	if allowed(p, 1, b) || !allowed(p, 2, a) {
		t.Errorf("after a failed reload: want the old policy")
	}
	p.close()

	testutil.Must(t, send(unscoped(a, b)))
	p = dialRaw(t, s.path)
	p.hello()
	if !allowed(p, 1, b) {
		t.Errorf("new session after the reload: %s denied, want allowed", b)
	}
	p.close()
	if allowed(old, 2, b) || !allowed(old, 3, a) {
		t.Errorf("session opened before the reload: want its old policy")
	}
	// Each generation holds its own descriptor of dir; the old one's goes
	// when its last session ends.
	if n := dirFDs(t, dir); n != 2 {
		t.Errorf("descriptors of %s with a session of the old policy open: %d, want 2 (one per policy)", dir, n)
	}
	old.close()
	for deadline := time.Now().Add(10 * time.Second); dirFDs(t, dir) != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("descriptors of %s after the old policy's last session ended: %d, want 1", dir, dirFDs(t, dir))
		}
	}
	if err := s.stop(t); err != nil {
		t.Errorf("Serve: %v", err)
	}
	if l := s.log.String(); !strings.Contains(l, "policy reloaded") || !strings.Contains(l, "reload failed") {
		t.Errorf("log: want a line for each reload:\n%s", s.log)
	}
}

// dirFDs counts this process's descriptors of dir.
func dirFDs(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	testutil.Must(t, err)
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == dir {
			n++
		}
	}
	return n
}
