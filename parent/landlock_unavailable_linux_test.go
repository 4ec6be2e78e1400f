//go:build linux

package parent_test

// Landlock where the kernel has none: the ABI probe made to fail by a
// seccomp filter, in a re-executed test binary (runRole).

import (
	"errors"
	"os"
	"runtime"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/parent"
)

// TestLandlockUnavailable makes the ABI probe fail, as on a kernel without
// Landlock (ENOSYS), or with Landlock disabled at boot (EOPNOTSUPP), with a
// seccomp filter on one thread: Landlock then fails with ErrNoLandlock, or,
// with BestEffort, succeeds with ABI 0 and restricts nothing. Any other
// probe error is an error either way.
func TestLandlockUnavailable(t *testing.T) {
	t.Parallel()
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skipf("the seccomp filter is written for amd64 and arm64, not %s", runtime.GOARCH)
	}
	runRole(t, "TestHelperSandbox", "landlock-unavailable")
}

func roleLandlockUnavailable(t *testing.T) {
	for _, tc := range []struct {
		errno   syscall.Errno
		missing bool // counts as "no Landlock"
	}{
		{syscall.ENOSYS, true},
		{syscall.EOPNOTSUPP, true},
		{syscall.EPERM, false},
	} {
		// Each case on a thread of its own, thrown away afterwards: the
		// filter cannot be removed.
		done := make(chan struct{})
		go func() {
			defer close(done)
			runtime.LockOSThread() // never unlocked
			if err := failLandlockProbe(tc.errno); err != nil {
				t.Errorf("installing the seccomp filter: %v", err)
				return
			}
			res, err := parent.Landlock(parent.LandlockConfig{})
			if tc.missing {
				if !errors.Is(err, parent.ErrNoLandlock) || res.ABI != 0 || res.Coverage != 0 || res.NotApplied != nil {
					t.Errorf("probe fails with %v: Landlock = %+v, %v; want ErrNoLandlock", tc.errno, res, err)
				}
			} else if err == nil || errors.Is(err, parent.ErrNoLandlock) || !errors.Is(err, tc.errno) {
				t.Errorf("probe fails with %v: Landlock = %+v, %v; want an error carrying %v that is not ErrNoLandlock", tc.errno, res, err, tc.errno)
			}

			res, err = parent.Landlock(parent.LandlockConfig{BestEffort: true})
			if tc.missing {
				if err != nil || res.ABI != 0 || res.Coverage != 0 {
					t.Errorf("probe fails with %v, BestEffort: Landlock = %+v, %v; want ABI 0, no coverage, nil", tc.errno, res, err)
				}
				// Nothing was restricted.
				if f, err := os.Open("/proc/self/status"); err != nil {
					t.Errorf("after a best-effort Landlock without Landlock, open fails: %v", err)
				} else {
					f.Close()
				}
			} else if err == nil {
				t.Errorf("probe fails with %v, BestEffort: Landlock = %+v, nil; want an error", tc.errno, res)
			}
		}()
		<-done
	}
}

// failLandlockProbe installs, on the calling thread only, a seccomp filter
// that makes landlock_create_ruleset fail with errno and allows everything
// else. The thread must be locked and never unlocked.
func failLandlockProbe(errno syscall.Errno) error {
	// Needed for an unprivileged filter; this thread only.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	filter := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // seccomp_data.nr
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: unix.SYS_LANDLOCK_CREATE_RULESET},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | uint32(errno)},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	return unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&prog)), 0, 0)
}
