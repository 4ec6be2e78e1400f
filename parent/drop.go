//go:build linux

package parent

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/ids"
)

// LookupCredential finds the credential for userName (a name or a numeric
// id) and groupName (likewise; empty means the user's primary group). The
// supplementary groups are left empty, so dropping clears them. Look up
// before dropping privileges or restricting the filesystem: the lookup reads
// /etc/passwd and /etc/group.
func LookupCredential(userName, groupName string) (Credential, error) {
	var c Credential
	u, err := ids.User(userName)
	if err != nil {
		return c, err
	}
	if c.UID, err = strconv.Atoi(u.Uid); err != nil {
		return c, fmt.Errorf("user %s: uid %q: %w", userName, u.Uid, err)
	}
	if c.GID, err = strconv.Atoi(u.Gid); err != nil {
		return c, fmt.Errorf("user %s: gid %q: %w", userName, u.Gid, err)
	}
	if groupName != "" {
		gid, err := ids.GID(groupName)
		if err != nil {
			return c, err
		}
		c.GID = int(gid)
	}
	return c, nil
}

// DropPrivileges makes every thread of the process the user c: it sets the
// supplementary groups, then the real, effective and saved group ids, then
// the user ids, on every thread, in programs with and without cgo. Sandbox
// does this and the rest of what a sandboxed program needs, in order.
//
// It then verifies what the kernel did: the real, effective and saved ids
// must all be c's, the groups exactly c.Groups, and, unless c is root,
// becoming root again must fail. Any difference is an error, and the
// process must not go on as if the drop had worked. Call it after Start: the
// opener keeps the privileges the process had when it started.
func DropPrivileges(c Credential) error {
	groups, err := setIDs(c)
	if err != nil {
		return err
	}
	return verifyDropped(c, groups)
}

// setIDs sets the supplementary groups, then the gids, then the uids, on
// every thread, and returns the groups it set. Go's syscall.Setgroups,
// Setresgid and Setresuid reach every thread: without cgo through
// AllThreadsSyscall, with cgo through the C library, which signals each
// thread to make the same call (its setxid broadcast).
func setIDs(c Credential) ([]int, error) {
	if c.UID < 0 || c.GID < 0 {
		return nil, fmt.Errorf("privsep: drop privileges: invalid uid %d or gid %d", c.UID, c.GID)
	}
	groups := c.Groups
	if groups == nil {
		groups = []int{}
	}
	if err := syscall.Setgroups(groups); err != nil {
		if errors.Is(err, syscall.EPERM) && os.Geteuid() != 0 {
			// The usual cause: the program was not started as root.
			return nil, fmt.Errorf("privsep: drop privileges: setgroups: %w: dropping privileges (privsep --user) needs root, and this process runs as uid %d: run it as root", err, os.Geteuid())
		}
		return nil, fmt.Errorf("privsep: drop privileges: setgroups: %w", err)
	}
	if err := syscall.Setresgid(c.GID, c.GID, c.GID); err != nil {
		return nil, fmt.Errorf("privsep: drop privileges: setresgid(%d): %w", c.GID, err)
	}
	if err := syscall.Setresuid(c.UID, c.UID, c.UID); err != nil {
		return nil, fmt.Errorf("privsep: drop privileges: setresuid(%d): %w", c.UID, err)
	}
	return groups, nil
}

func verifyDropped(c Credential, groups []int) error {
	r, e, s := unix.Getresuid()
	if r != c.UID || e != c.UID || s != c.UID {
		return fmt.Errorf("privsep: drop privileges: uids are %d/%d/%d (real/effective/saved), want %d", r, e, s, c.UID)
	}
	r, e, s = unix.Getresgid()
	if r != c.GID || e != c.GID || s != c.GID {
		return fmt.Errorf("privsep: drop privileges: gids are %d/%d/%d (real/effective/saved), want %d", r, e, s, c.GID)
	}
	got, err := unix.Getgroups()
	if err != nil {
		return fmt.Errorf("privsep: drop privileges: getgroups: %w", err)
	}
	slices.Sort(got)
	want := slices.Clone(groups)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return fmt.Errorf("privsep: drop privileges: groups are %v, want %v", got, want)
	}
	if c.UID == 0 {
		return nil
	}
	// Try to become root again, on a thread of its own that is thrown away
	// afterwards: the raw call changes only that thread, so even if it
	// succeeded nothing else would run as root.
	regained := make(chan bool)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		// The raw system calls: unix.Setresuid is syscall.Setresuid, which
		// would act on every thread.
		_, _, eu := unix.RawSyscall(unix.SYS_SETRESUID, 0, 0, 0)
		// Group 0 may be the one asked for; setting the gids to what they
		// are is always allowed.
		eg := unix.EPERM
		if c.GID != 0 {
			_, _, eg = unix.RawSyscall(unix.SYS_SETRESGID, 0, 0, 0)
		}
		regained <- eu == 0 || eg == 0
	}()
	if <-regained {
		return ErrRegainedRoot
	}
	return nil
}
