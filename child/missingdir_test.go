//go:build linux

package child_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/protocol"
)

// TestMissingRuleDirRefused: a tree rule whose directory does not exist is
// refused at the handshake (error id 0, ReasonSystem, ENOENT) and the
// opener exits, its log naming the rule and the directory; a path that is a
// file, not a directory, likewise (ENOTDIR). Before, it started and every
// request under the rule failed, even after the directory appeared.
func TestMissingRuleDirRefused(t *testing.T) {
	dir := t.TempDir()
	testutil.Must(t, os.WriteFile(filepath.Join(dir, "file"), nil, 0o644))
	for _, noOpenat2 := range []bool{false, true} {
		for _, tc := range []struct {
			name  string
			path  string
			errno syscall.Errno
		}{
			{"missing", filepath.Join(dir, "gone"), unix.ENOENT},
			{"a file", filepath.Join(dir, "file"), unix.ENOTDIR},
		} {
			t.Run(fmt.Sprintf("%s/fallback=%v", tc.name, noOpenat2), func(t *testing.T) {
				rule := "r:" + tc.path + "/"
				p := helloFlags(t, walkFlags(noOpenat2), "r:/etc/hostname", rule)
				p.expectError(0, protocol.ReasonSystem, tc.errno)
				if code := p.exit(); code != protocol.ExitProtocol {
					t.Errorf("exit status %d, want %d", code, protocol.ExitProtocol)
				}
				if log := p.stderr.String(); !strings.Contains(log, rule) || !strings.Contains(log, "optional=yes") {
					t.Errorf("log should name the rule %q and suggest optional=yes:\n%s", rule, log)
				}
			})
		}
	}
}

// TestMissingRuleDirOptional: with optional=yes the opener starts, and a
// request under the rule fails with ENOENT (ReasonSystem), also after the
// directory is created: it was resolved once, at the handshake, as
// documented.
func TestMissingRuleDirOptional(t *testing.T) {
	for _, noOpenat2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", noOpenat2), func(t *testing.T) {
			gone := filepath.Join(t.TempDir(), "gone")
			p := helloFlags(t, walkFlags(noOpenat2), "r:"+gone+"/ optional=yes")
			m := p.recv()
			if m.Type != protocol.TypeReady {
				t.Fatalf("got %s, want ready; stderr: %s", m.Type, p.stderr.String())
			}
			fd, e := p.open(1, gone+"/x", unix.O_RDONLY)
			if fd >= 0 || e.Reason != protocol.ReasonSystem || syscall.Errno(e.Errno) != unix.ENOENT {
				t.Fatalf("open under a missing optional dir: fd %d, %+v; want ENOENT", fd, e)
			}
			testutil.Must(t, os.Mkdir(gone, 0o755))
			testutil.Must(t, os.WriteFile(filepath.Join(gone, "x"), nil, 0o644))
			fd, e = p.open(2, gone+"/x", unix.O_RDONLY)
			if fd >= 0 {
				unix.Close(fd)
				t.Fatalf("the directory created after the handshake was seen; the docs say it is not")
			}
			if syscall.Errno(e.Errno) != unix.ENOENT {
				t.Fatalf("open after creating the dir: %+v; want ENOENT", e)
			}
		})
	}
}
