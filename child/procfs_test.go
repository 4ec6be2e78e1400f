//go:build linux

package child_test

import (
	"fmt"
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/hostile"
	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/protocol"
)

// TestHostileBroadTreeReachesProc: a parent under a broad tree rule (r:/)
// asks for the opener's own /proc/self/... files. "proc/self" is an
// ordinary symlink that stays beneath "/", so containment alone lets it
// through; the opener must refuse anything on procfs unless the deciding
// rule's own directory is on procfs. Files elsewhere, on a block device or
// on tmpfs, are still served.
func TestHostileBroadTreeReachesProc(t *testing.T) {
	tmp := t.TempDir()
	plain := tmp + "/plain"
	testutil.Must(t, os.WriteFile(plain, []byte("x"), 0o644))
	for _, noOpenat2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", noOpenat2), func(t *testing.T) {
			p := startWith(t, noOpenat2, "/", "/proc/sys/kernel/")
			self0, opener0 := p.fdCounts()
			id := uint32(0)
			for _, c := range []struct {
				path  string
				flags int
				ok    bool
			}{
				{"/proc/self/status", unix.O_RDONLY, false},
				{"/proc/self/environ", unix.O_RDONLY, false},
				{"/proc/thread-self/comm", unix.O_RDONLY, false},
				{fmt.Sprintf("/proc/%d/cmdline", p.cmd.Process.Pid), unix.O_RDONLY, false},
				{"/proc/cpuinfo", unix.O_RDONLY, false},
				{"/proc/sys/kernel/ostype", unix.O_RDONLY, true}, // its rule's directory is on procfs
				{plain, unix.O_RDONLY, true},
				{"/etc/hostname", unix.O_RDONLY, true},
			} {
				id++
				fd, e := p.open(id, c.path, c.flags)
				got := hostile.ReplyText(id, e.Reason, syscall.Errno(e.Errno))
				want := hostile.ReplyText(id, protocol.ReasonEscape, unix.EACCES)
				if fd >= 0 {
					unix.Close(fd)
					got = "opened"
				}
				if c.ok {
					want = "opened"
				}
				if !c.ok && e.Reason == protocol.ReasonEscape {
					got = want // the fallback walk refuses the symlink itself (ELOOP): as good
				}
				if got != want {
					t.Errorf("%s under r:/: got %s, want %s", c.path, got, want)
				}
				if !c.ok {
					hostile.Row(t, secListen, fmt.Sprintf("tree rule r:/ asks for %s (fallback=%v)", c.path, noOpenat2), want, got)
				}
			}
			p.checkFDs(self0, opener0)
			p.close()
			if code := p.exit(); code != 0 {
				t.Errorf("opener exit %d", code)
			}
		})
	}
}
