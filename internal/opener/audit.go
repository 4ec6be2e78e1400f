//go:build linux

package opener

import (
	"errors"
	"strconv"
	"syscall"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/policy"
	"github.com/privsep-go/privsep/protocol"
)

// audit logs a refusal. Policy decisions are warnings; an open that the
// policy allowed but the kernel failed (a missing file) is debug.
func (w *worker) audit(o protocol.Open, reason protocol.Reason, errno syscall.Errno, why string, rule int) {
	log := w.s.log
	// A directory refused for want of dirs=yes is what an fs.FS over the
	// opener meets on every directory it opens before it lists it instead:
	// routine, so debug like a failed open.
	routine := reason == protocol.ReasonSystem || reason == protocol.ReasonDirectory
	if routine && !log.IsDebug() {
		return
	}
	args := []any{"path", printable(o.Path), "flags", policy.FlagString(int(o.Flags)),
		"reason", reason.String(), "errno", errno.Error(), "why", why}
	if rule >= 0 {
		args = append(args, "rule", w.s.rs.rules[rule])
	}
	if r := w.brokered; r != nil {
		args = append(args, "pid", r.PID, "syscall", string(r.Syscall), "raw", strconv.Quote(r.Raw))
	}
	if routine {
		log.Debug("open failed", args...)
		return
	}
	log.Warn("denied", args...)
}

// printable renders a path for the log: as is when it is valid UTF-8, else
// Go-quoted so that no byte is lost.
func printable(p []byte) string {
	if utf8.Valid(p) {
		return string(p)
	}
	return strconv.Quote(string(p))
}

// landsOnProc reports whether fd, opened under the rule directory dir, is
// on procfs while dir is not. A broad tree such as rw:/ reaches /proc/self
// through names that stay beneath it ("proc/self" is an ordinary symlink,
// not a magic one), and /proc/self/mem or /proc/self/environ are the
// opener's own. Rules on procfs itself (r:/proc/sys/) were vetted when the
// policy was loaded and at the handshake. Files on real block devices
// (major != 0) are never procfs, so they cost nothing; when fstatfs fails
// we cannot tell, and refuse.
func (w *worker) landsOnProc(fd int, st *unix.Stat_t, dir int) bool {
	if w.s.rs.onProc[dir] || unix.Major(uint64(st.Dev)) != 0 || uint64(st.Dev) == w.plainDev {
		return false
	}
	if !isProcfs(fd) {
		w.plainDev = uint64(st.Dev)
		return false
	}
	return true
}

// refusalOf takes a policy check's error apart. Anything but a Refusal
// (which the policy package does not return) is a denial with EACCES, so
// that an unexpected error still refuses.
func refusalOf(err error) policy.Refusal {
	var r policy.Refusal
	if !errors.As(err, &r) {
		return policy.Refusal{Kind: policy.Denied, Errno: unix.EACCES, Why: err.Error()}
	}
	return r
}
