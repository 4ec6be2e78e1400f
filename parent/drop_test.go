//go:build linux

package parent_test

// Tests of LookupCredential and DropPrivileges. A privilege drop cannot be
// undone, so every drop happens in a re-executed copy of the test binary
// that plays one role (runRole) and never in the process running the
// tests.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/parent"
)

// roleEnv names the role a re-executed test binary plays: the helper test
// that runRole selects looks at it and does nothing when it is unset, as in
// an ordinary run of the tests.
const roleEnv = "PRIVSEP_TEST_ROLE"

// roleTimeout bounds one run of a role.
const roleTimeout = 30 * time.Second

// runRole runs this test binary again with only the helper test helper
// selected and the role role (env adds variables), and fails t unless the
// role ran to its end and passed. The role's own failures come back in its
// output, which is shown. It returns that output.
func runRole(t *testing.T, helper, role string, env ...string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), roleTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^"+helper+"$", "-test.v", "-test.count=1",
		"-test.timeout="+(roleTimeout-5*time.Second).String())
	cmd.Env = append(append(os.Environ(), roleEnv+"="+role), env...)
	cmd.WaitDelay = 2 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("role %s: still running after %v (killed); output:\n%s", role, roleTimeout, out.String())
	}
	if err != nil {
		t.Fatalf("role %s: %v; output:\n%s", role, err, out.String())
	}
	if !strings.Contains(out.String(), roleDone(role)) {
		t.Fatalf("role %s did not run to its end; output:\n%s", role, out.String())
	}
	for _, l := range strings.Split(out.String(), "\n") {
		if note, ok := strings.CutPrefix(l, notePrefix); ok {
			t.Log(note)
		}
	}
	return out.String()
}

// notePrefix starts a line of a role's output that runRole logs.
const notePrefix = "role note: "

// roleDone is the line a role prints when it has passed every check.
func roleDone(role string) string { return "role " + role + ": done" }

// playRole, in a TestHelper function, plays the role roleEnv names (one of
// roles) and reports it done; outside a re-executed binary it does nothing.
func playRole(t *testing.T, roles map[string]func(*testing.T)) {
	role := os.Getenv(roleEnv)
	if role == "" {
		return
	}
	play, ok := roles[role]
	if !ok {
		t.Fatalf("unknown role %q", role)
	}
	play(t)
	finishRole(t, role)
}

// finishRole prints roleDone unless t failed.
func finishRole(t *testing.T, role string) {
	if !t.Failed() {
		fmt.Println(roleDone(role))
	}
}

// nobody returns the uid and gid of the user nobody.
func nobody(t *testing.T) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		t.Skipf("user nobody has ids %q and %q", u.Uid, u.Gid)
	}
	return uid, gid
}

// needDrop marks a test of a privilege drop parallel, and skips it unless
// it runs as root (what says what needs it) and there is a user nobody to
// drop to.
func needDrop(t *testing.T, what string) {
	t.Helper()
	t.Parallel()
	testutil.NeedRoot(t, what)
	nobody(t)
}

// TestHelperDrop is not a test: it plays a role of drop_test.go in a
// re-executed test binary (see runRole), and does nothing otherwise.
func TestHelperDrop(t *testing.T) {
	playRole(t, map[string]func(*testing.T){
		"drop":    roleDrop,
		"groups":  roleGroups,
		"bad-ids": roleBadIDs,
	})
}

func TestLookupCredential(t *testing.T) {
	t.Parallel()
	nuid, ngid := nobody(t)
	rootGroup, err := user.LookupGroupId("0")
	if err != nil {
		t.Skipf("no group 0: %v", err)
	}
	// A uid with no passwd entry.
	const unknownUID = 4242424
	if _, err := user.LookupId(strconv.Itoa(unknownUID)); err == nil {
		t.Skipf("uid %d unexpectedly has a passwd entry", unknownUID)
	}
	for _, tc := range []struct {
		user, group string
		uid, gid    int
	}{
		{"nobody", "", nuid, ngid},
		{strconv.Itoa(nuid), "", nuid, ngid},
		{"root", "", 0, 0},
		{"0", "", 0, 0},
		{"nobody", rootGroup.Name, nuid, 0},
		{"nobody", "0", nuid, 0},
		{"nobody", "4242", nuid, 4242},
		{"root", strconv.Itoa(ngid), 0, ngid},
		// A uid without a passwd entry is still a uid; its group is itself.
		{strconv.Itoa(unknownUID), "", unknownUID, unknownUID},
		{strconv.Itoa(unknownUID), "100", unknownUID, 100},
	} {
		c, err := parent.LookupCredential(tc.user, tc.group)
		if err != nil {
			t.Errorf("LookupCredential(%q, %q): %v", tc.user, tc.group, err)
			continue
		}
		if c.UID != tc.uid || c.GID != tc.gid || len(c.Groups) != 0 {
			t.Errorf("LookupCredential(%q, %q) = %+v, want uid %d, gid %d and no supplementary groups", tc.user, tc.group, c, tc.uid, tc.gid)
		}
	}
	for _, tc := range []struct {
		user, group string
		mention     string // the error names what was not found
	}{
		{"no-such-user-privsep-test", "", "no-such-user-privsep-test"},
		{"nobody", "no-such-group-privsep-test", "no-such-group-privsep-test"},
		{"no-such-user-privsep-test", "root", "no-such-user-privsep-test"},
		{"", "", ""},
	} {
		c, err := parent.LookupCredential(tc.user, tc.group)
		if err == nil {
			t.Errorf("LookupCredential(%q, %q) = %+v, want an error", tc.user, tc.group, c)
			continue
		}
		if !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("LookupCredential(%q, %q): %q does not mention %q", tc.user, tc.group, err, tc.mention)
		}
	}
}

// TestDropPrivileges drops to nobody after starting an opener: the process
// can no longer open a root-only file itself, the opener still can, every
// id and every thread is nobody's, and root cannot be regained.
func TestDropPrivileges(t *testing.T) {
	needDrop(t, "dropping privileges to nobody")
	dir := testutil.PublicDir(t, "privsep-parent-test-")
	secret := filepath.Join(dir, "secret")
	public := filepath.Join(dir, "public")
	testutil.Must(t, os.WriteFile(secret, []byte("root only"), 0o600))
	testutil.Must(t, os.WriteFile(public, []byte("anyone"), 0o644))
	runRole(t, "TestHelperDrop", "drop", "PRIVSEP_TEST_SECRET="+secret, "PRIVSEP_TEST_PUBLIC="+public)
}

func roleDrop(t *testing.T) {
	secret, public := os.Getenv("PRIVSEP_TEST_SECRET"), os.Getenv("PRIVSEP_TEST_PUBLIC")
	nuid, ngid := nobody(t)
	if os.Geteuid() != 0 {
		t.Fatal("the role needs root")
	}
	o := start(t, parent.Config{Rules: []string{secret}})

	// Threads that exist before the drop, each locked to its goroutine so
	// that they stay: the drop must reach them too.
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		ready := make(chan struct{})
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			close(ready)
			<-release
		}()
		<-ready
	}
	defer func() { close(release); wg.Wait() }()

	c, err := parent.LookupCredential("nobody", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.DropPrivileges(c); err != nil {
		t.Fatalf("DropPrivileges(%+v): %v", c, err)
	}

	if r, e, s := unix.Getresuid(); r != nuid || e != nuid || s != nuid {
		t.Errorf("uids are %d/%d/%d (real/effective/saved), want %d", r, e, s, nuid)
	}
	if r, e, s := unix.Getresgid(); r != ngid || e != ngid || s != ngid {
		t.Errorf("gids are %d/%d/%d (real/effective/saved), want %d", r, e, s, ngid)
	}
	if g, err := unix.Getgroups(); err != nil || len(g) != 0 {
		t.Errorf("supplementary groups are %v (%v), want none", g, err)
	}
	checkThreads(t, nuid, ngid, nil)

	// The process itself: the root-only file is refused, for its mode (a
	// public file beside it opens).
	if f, err := os.Open(secret); err == nil {
		f.Close()
		t.Errorf("os.Open(%s) after the drop: opened, want EACCES", secret)
	} else if !errors.Is(err, syscall.EACCES) {
		t.Errorf("os.Open(%s) after the drop: %v, want EACCES", secret, err)
	}
	if b, err := os.ReadFile(public); err != nil || string(b) != "anyone" {
		t.Errorf("reading %s after the drop: %q, %v; want %q", public, b, err, "anyone")
	}
	// The opener, started before the drop, still opens it.
	if got, err := read(t, o, secret); err != nil || got != "root only" {
		t.Errorf("reading %s through the opener after the drop: %q, %v; want %q", secret, got, err, "root only")
	}

	// No way back to root.
	if err := syscall.Setuid(0); !errors.Is(err, syscall.EPERM) {
		t.Errorf("syscall.Setuid(0) after the drop: %v, want EPERM", err)
	}
	if err := syscall.Setgid(0); !errors.Is(err, syscall.EPERM) {
		t.Errorf("syscall.Setgid(0) after the drop: %v, want EPERM", err)
	}
	if err := syscall.Setgroups([]int{0}); !errors.Is(err, syscall.EPERM) {
		t.Errorf("syscall.Setgroups([0]) after the drop: %v, want EPERM", err)
	}
	errc := make(chan syscall.Errno)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		_, _, e := unix.RawSyscall(unix.SYS_SETRESUID, 0, 0, 0)
		errc <- e
	}()
	if e := <-errc; e != syscall.EPERM {
		t.Errorf("raw setresuid(0, 0, 0) on one thread after the drop: %v, want EPERM", e)
	}
	if u := os.Geteuid(); u != nuid {
		t.Errorf("euid %d after the attempts, want %d", u, nuid)
	}

	if err := o.Close(); err != nil {
		t.Errorf("closing the opener after the drop: %v", err)
	}
}

// checkThreads checks the ids of every thread of the process in
// /proc/self/task: Uid and Gid lines (real, effective, saved, filesystem)
// and the supplementary groups.
func checkThreads(t *testing.T, uid, gid int, groups []int) {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	wantGroups := make([]string, len(groups))
	for i, g := range groups {
		wantGroups[i] = strconv.Itoa(g)
	}
	slices.Sort(wantGroups)
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/status")
		if err != nil {
			continue // a thread that ended meanwhile
		}
		fields := map[string][]string{}
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				fields[k] = strings.Fields(v)
			}
		}
		for _, k := range []string{"Uid", "Gid"} {
			want := strconv.Itoa(uid)
			if k == "Gid" {
				want = strconv.Itoa(gid)
			}
			if got := fields[k]; len(got) != 4 || slices.IndexFunc(got, func(s string) bool { return s != want }) >= 0 {
				t.Errorf("thread %s: %s %v, want %s four times", task.Name(), k, got, want)
			}
		}
		got := slices.Clone(fields["Groups"])
		slices.Sort(got)
		if !slices.Equal(got, wantGroups) {
			t.Errorf("thread %s: Groups %v, want %v", task.Name(), got, wantGroups)
		}
	}
}

// TestDropPrivilegesGroups drops with explicit supplementary groups: they
// are set, exactly.
func TestDropPrivilegesGroups(t *testing.T) {
	needDrop(t, "dropping privileges")
	runRole(t, "TestHelperDrop", "groups")
}

func roleGroups(t *testing.T) {
	nuid, ngid := nobody(t)
	groups := []int{4242, 100, ngid}
	if err := parent.DropPrivileges(parent.Credential{UID: nuid, GID: ngid, Groups: groups}); err != nil {
		t.Fatalf("DropPrivileges: %v", err)
	}
	got, err := unix.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(groups))
	if !slices.Equal(got, want) {
		t.Errorf("supplementary groups are %v, want %v", got, want)
	}
	checkThreads(t, nuid, ngid, groups)
	if err := syscall.Setuid(0); !errors.Is(err, syscall.EPERM) {
		t.Errorf("syscall.Setuid(0) after the drop: %v, want EPERM", err)
	}
}

// TestDropPrivilegesBadIDs: negative ids are refused before anything
// changes, and ids the kernel cannot represent (which it would take as
// "leave unchanged", or truncate) are caught by the verification.
func TestDropPrivilegesBadIDs(t *testing.T) {
	needDrop(t, "attempting privilege drops")
	runRole(t, "TestHelperDrop", "bad-ids")
}

func roleBadIDs(t *testing.T) {
	nuid, ngid := nobody(t)
	groupsBefore, err := unix.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []parent.Credential{
		{UID: -1, GID: ngid},
		{UID: nuid, GID: -1},
		{UID: -5, GID: -5},
	} {
		err := parent.DropPrivileges(c)
		if err == nil {
			t.Fatalf("DropPrivileges(%+v): nil, want an error", c)
		}
		// Nothing changed: still root, with the same groups.
		r, e, s := unix.Getresuid()
		g, _ := unix.Getgroups()
		if r != 0 || e != 0 || s != 0 || os.Getegid() != 0 || !slices.Equal(g, groupsBefore) {
			t.Fatalf("DropPrivileges(%+v) failed (%v) but changed the process: uids %d/%d/%d, gid %d, groups %v (were %v)",
				c, err, r, e, s, os.Getegid(), g, groupsBefore)
		}
	}

	// Root may drop to root: the regain check does not apply, groups clear.
	if err := parent.DropPrivileges(parent.Credential{}); err != nil {
		t.Errorf("DropPrivileges to root as root: %v", err)
	}
	if g, _ := unix.Getgroups(); len(g) != 0 {
		t.Errorf("groups after dropping to root: %v, want none", g)
	}

	if strconv.IntSize < 64 {
		return
	}
	// uid_t(-1) means "leave unchanged" to setresuid: nothing happens, and
	// only the verification can tell.
	// (A variable: the constant would not compile for a 32-bit int.)
	wide := int64(1)<<32 - 1
	unchanged := int(wide)
	if err := parent.DropPrivileges(parent.Credential{UID: unchanged, GID: unchanged}); err == nil {
		t.Errorf("DropPrivileges to uid and gid %d: nil, want an error from the verification", unchanged)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("euid %d after the refused drop, want 0", os.Geteuid())
	}
	// Ids above 32 bits are truncated by the kernel: the drop goes to
	// another user than the one asked for, which is an error. (This one
	// does drop, so it comes last.)
	var shift uint = 32
	truncated := 1<<shift + nuid
	if err := parent.DropPrivileges(parent.Credential{UID: truncated, GID: 1<<shift + ngid}); err == nil {
		t.Errorf("DropPrivileges to uid %d: nil, want an error from the verification", truncated)
	} else if !strings.Contains(err.Error(), strconv.Itoa(truncated)) {
		t.Errorf("DropPrivileges to uid %d: %q does not name the wanted uid", truncated, err)
	}
}
