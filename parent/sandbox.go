//go:build linux

package parent

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Coverage says which threads a process-wide restriction reached.
type Coverage int

const (
	// AllThreads: every thread of the process, and so everything it runs
	// from now on.
	AllThreads Coverage = iota + 1
	// CallingThread: only the OS thread of the calling goroutine, which is
	// now locked to it (runtime.LockOSThread) for good, and threads and
	// programs it starts from now on. This happens when the kernel cannot
	// restrict all threads at once (Landlock before ABI 8) and the program
	// is linked with cgo, where Go cannot run a system call on every
	// thread. It is enough for a process about to execve, and for work
	// done on that goroutine; the rest of the process is not restricted.
	CallingThread
)

func (c Coverage) String() string {
	switch c {
	case AllThreads:
		return "all threads"
	case CallingThread:
		return "the calling thread only"
	}
	return "none"
}

// allThreads runs a system call on every thread of the process, if Go can
// (it cannot in programs linked with cgo: ENOTSUP).
func allThreads(trap, a1, a2, a3 uintptr) (Coverage, error) {
	if _, _, e := syscall.AllThreadsSyscall(trap, a1, a2, a3); e != 0 {
		return 0, e
	}
	return AllThreads, nil
}

// SetNoNewPrivs sets PR_SET_NO_NEW_PRIVS: from now on execve can grant no
// privileges (setuid bits and file capabilities are ignored), for the
// process and everything it runs. It is set on every thread where Go can;
// otherwise on the calling thread, which it locks (see CallingThread).
func SetNoNewPrivs() (Coverage, error) {
	cov, err := allThreads(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0)
	if err == syscall.ENOTSUP {
		runtime.LockOSThread()
		if err = unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err == nil {
			cov = CallingThread
		}
	}
	if err != nil {
		return 0, fmt.Errorf("privsep: prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	return cov, nil
}

// ErrNoLandlock is matched by the error Landlock returns when the kernel has
// no Landlock (too old, or not enabled among its security modules).
var ErrNoLandlock = errors.New("landlock is not available in this kernel")

// LandlockConfig says what a Landlock restriction leaves allowed. The zero
// value denies every filesystem access the kernel's Landlock ABI can
// restrict: a sandboxed parent reaches files only through its opener and
// the descriptors it already holds.
type LandlockConfig struct {
	// ReadOnly paths (files or directory trees) stay readable, and
	// executable.
	ReadOnly []string
	// BestEffort makes a kernel without Landlock a success with ABI 0:
	// nothing is restricted, and the caller says so if it cares. Without it
	// such a kernel is an error matching ErrNoLandlock.
	BestEffort bool
}

// LandlockResult reports what Landlock did.
type LandlockResult struct {
	ABI      int      // the kernel's Landlock ABI version; 0 when unavailable
	Coverage Coverage // which threads are restricted
}

// The restrict_self flag that applies a ruleset to every thread (ABI 8).
const landlockTSYNC = unix.LANDLOCK_RESTRICT_SELF_TSYNC

// Landlock restricts the process's own filesystem access with Landlock, on
// top of no_new_privs, which Landlock requires and which it sets. It handles
// every filesystem right the kernel's ABI knows, and grants back only what
// cfg names. The restriction cannot be undone and is inherited by every
// program the process runs.
//
// Where the kernel can restrict all threads at once (ABI 8, TSYNC) or Go can
// run the call on every thread (no cgo), all threads are restricted;
// otherwise only the calling thread (see CallingThread), which the result
// reports. Opened descriptors, the opener's socket included, keep working:
// Landlock checks opening paths, not using descriptors.
func Landlock(cfg LandlockConfig) (LandlockResult, error) {
	abi, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if e != 0 {
		if (e == unix.ENOSYS || e == unix.EOPNOTSUPP) && cfg.BestEffort {
			return LandlockResult{}, nil
		}
		if e == unix.ENOSYS || e == unix.EOPNOTSUPP {
			return LandlockResult{}, fmt.Errorf("privsep: %w (%v)", ErrNoLandlock, e)
		}
		return LandlockResult{}, fmt.Errorf("privsep: landlock ABI probe: %w", e)
	}
	res := LandlockResult{ABI: int(abi)}
	handled := landlockFSRights(res.ABI)
	attr := unix.LandlockRulesetAttr{Handled_access_fs: handled}
	fd, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr), 0)
	if e != 0 {
		return res, fmt.Errorf("privsep: landlock_create_ruleset: %w", e)
	}
	ruleset := int(fd)
	defer unix.Close(ruleset)

	readExec := uint64(unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR)
	for _, p := range cfg.ReadOnly {
		if err := landlockAllow(ruleset, p, readExec&handled); err != nil {
			return res, err
		}
	}

	if _, err := SetNoNewPrivs(); err != nil {
		return res, err
	}
	// All threads by the kernel, then all threads by Go, then this thread.
	_, _, e = unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(ruleset), landlockTSYNC, 0)
	switch e {
	case 0:
		res.Coverage = AllThreads
		return res, nil
	case unix.EINVAL: // the kernel does not know TSYNC
	default:
		return res, fmt.Errorf("privsep: landlock_restrict_self: %w", e)
	}
	cov, err := allThreads(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(ruleset), 0, 0)
	if err == syscall.ENOTSUP {
		runtime.LockOSThread()
		// no_new_privs must hold on this very thread.
		if err = unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err == nil {
			if _, _, e := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(ruleset), 0, 0); e != 0 {
				err = e
			}
		}
		cov = CallingThread
	}
	if err != nil {
		return res, fmt.Errorf("privsep: landlock_restrict_self: %w", err)
	}
	res.Coverage = cov
	return res, nil
}

// landlockFSRights returns every filesystem right ABI version abi handles.
func landlockFSRights(abi int) uint64 {
	r := uint64(unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE |
		unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR |
		unix.LANDLOCK_ACCESS_FS_REMOVE_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_FILE |
		unix.LANDLOCK_ACCESS_FS_MAKE_CHAR | unix.LANDLOCK_ACCESS_FS_MAKE_DIR |
		unix.LANDLOCK_ACCESS_FS_MAKE_REG | unix.LANDLOCK_ACCESS_FS_MAKE_SOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_SYM)
	if abi >= 2 {
		r |= unix.LANDLOCK_ACCESS_FS_REFER
	}
	if abi >= 3 {
		r |= unix.LANDLOCK_ACCESS_FS_TRUNCATE
	}
	if abi >= 5 {
		r |= unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
	}
	return r
}

// landlockAllow adds a rule granting access beneath path. A missing path is
// skipped: there is nothing to grant.
func landlockAllow(ruleset int, path string, access uint64) error {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT {
		return nil
	}
	if err != nil {
		return fmt.Errorf("privsep: landlock rule %s: %w", path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("privsep: landlock rule %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		// Directory rights mean nothing on a file, and the kernel refuses
		// them there.
		access &^= unix.LANDLOCK_ACCESS_FS_READ_DIR
	}
	attr := unix.LandlockPathBeneathAttr{Allowed_access: access, Parent_fd: int32(fd)}
	if _, _, e := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(ruleset), unix.LANDLOCK_RULE_PATH_BENEATH,
		uintptr(unsafe.Pointer(&attr)), 0, 0, 0); e != 0 {
		return fmt.Errorf("privsep: landlock rule %s: %w", path, e)
	}
	return nil
}
