//go:build linux

package parent_test

// Tests of SetNoNewPrivs and Landlock. Both are irreversible, so each runs
// in a re-executed test binary (runRole, in drop_test.go). They need no
// root: an unprivileged process may set no_new_privs and restrict itself.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/parent"
)

func needLandlock(t *testing.T) int {
	t.Helper()
	abi := testutil.LandlockABI()
	if abi <= 0 {
		t.Skip("needs Landlock: landlock_create_ruleset(LANDLOCK_CREATE_RULESET_VERSION) fails in this kernel")
	}
	return abi
}

// goCannotReachAllThreads reports whether Go cannot run a system call on
// every thread: programs linked with cgo, where AllThreadsSyscall says
// ENOTSUP. The probe (getpid) changes nothing.
func goCannotReachAllThreads() bool {
	_, _, e := syscall.AllThreadsSyscall(syscall.SYS_GETPID, 0, 0, 0)
	return e == syscall.ENOTSUP
}

// noNewPrivs reads the NoNewPrivs field of a /proc status file.
func noNewPrivs(t *testing.T, status string) string {
	t.Helper()
	b, err := os.ReadFile(status)
	if err != nil {
		t.Fatal(err)
	}
	return statusField(string(b), "NoNewPrivs")
}

func statusField(status, name string) string {
	for _, l := range strings.Split(status, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// run starts prog from the calling goroutine's thread (a restricted one,
// in these tests) and returns its output and error. Standard input, output
// and error are pipes: with nil ones os/exec would open /dev/null, which a
// restricted thread may not.
func run(t *testing.T, prog string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	var o, e bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(""), &o, &e
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %q: still running after 10s", prog, args)
	}
	return o.String(), e.String(), err
}

// TestHelperSandbox is not a test: it plays a role of sandbox_test.go in a
// re-executed test binary (see runRole), and does nothing otherwise.
func TestHelperSandbox(t *testing.T) {
	playRole(t, map[string]func(*testing.T){
		"no-new-privs":         roleNoNewPrivs,
		"landlock-deny-all":    roleLandlockDenyAll,
		"landlock-read-only":   roleLandlockReadOnly,
		"landlock-exec":        roleLandlockExec,
		"landlock-unavailable": roleLandlockUnavailable,
		"landlock-mptcp":       roleLandlockMPTCP,
		"landlock-compat32":    roleLandlockCompat32,
	})
}

func TestCoverageString(t *testing.T) {
	t.Parallel()
	for c, want := range map[parent.Coverage]string{
		parent.AllThreads:    "all threads",
		parent.CallingThread: "the calling thread only",
		0:                    "none",
	} {
		if got := c.String(); got != want {
			t.Errorf("Coverage(%d).String() = %q, want %q", int(c), got, want)
		}
	}
}

// TestSetNoNewPrivs: no_new_privs holds where the Coverage says, and for
// the programs started from there.
func TestSetNoNewPrivs(t *testing.T) {
	t.Parallel()
	if v := noNewPrivs(t, "/proc/self/status"); v != "0" {
		t.Skipf("no_new_privs is already %q in the test process; nothing to observe", v)
	}
	runRole(t, "TestHelperSandbox", "no-new-privs")
}

func roleNoNewPrivs(t *testing.T) {
	// Threads that exist before, each held by a goroutine: the call must
	// reach them too. This test binary is linked with cgo (os/user) where
	// a C compiler is present, where Go alone cannot reach them.
	release := make(chan struct{})
	defer close(release)
	for range 8 {
		ready := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			close(ready)
			<-release
		}()
		<-ready
	}
	runtime.LockOSThread() // everything below on one thread, as a caller would
	if v := noNewPrivs(t, "/proc/thread-self/status"); v != "0" {
		t.Fatalf("NoNewPrivs %q before SetNoNewPrivs, want 0", v)
	}
	cov, err := parent.SetNoNewPrivs()
	if err != nil {
		t.Fatalf("SetNoNewPrivs: %v", err)
	}
	if cov != parent.AllThreads {
		t.Errorf("SetNoNewPrivs reports %v, want %v", cov, parent.AllThreads)
	}
	fmt.Printf("%sSetNoNewPrivs covers %v (Go alone could reach every thread: %v)\n", notePrefix, cov, !goCannotReachAllThreads())
	if v, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); err != nil || v != 1 {
		t.Errorf("PR_GET_NO_NEW_PRIVS on the calling thread: %d, %v; want 1", v, err)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) < 9 {
		t.Errorf("%d threads, want at least the 8 held ones and this one", len(tasks))
	}
	for _, task := range tasks {
		if v := noNewPrivs(t, "/proc/self/task/"+task.Name()+"/status"); v != "1" {
			t.Errorf("thread %s: NoNewPrivs %q after SetNoNewPrivs, want 1", task.Name(), v)
		}
	}
	// A program started from here inherits it.
	out, _, err := run(t, "/bin/cat", "/proc/self/status")
	if err != nil {
		t.Fatalf("cat /proc/self/status: %v", err)
	}
	if v := statusField(out, "NoNewPrivs"); v != "1" {
		t.Errorf("NoNewPrivs of a program started after SetNoNewPrivs: %q, want 1", v)
	}
	// Setting it again is harmless.
	if cov2, err := parent.SetNoNewPrivs(); err != nil || cov2 != cov {
		t.Errorf("SetNoNewPrivs again: %v, %v; want %v, nil", cov2, err, cov)
	}
}

// sandboxFiles makes the files the Landlock roles use:
//
//	dir/tree/a.txt        "alpha"
//	dir/tree/sub/b.txt    "beta"
//	dir/single.txt        "single"
//	dir/outside.txt       "outside"
func sandboxFiles(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	testutil.Must(t, os.MkdirAll(filepath.Join(dir, "tree", "sub"), 0o755))
	testutil.Must(t, os.WriteFile(filepath.Join(dir, "tree", "a.txt"), []byte("alpha"), 0o644))
	testutil.Must(t, os.WriteFile(filepath.Join(dir, "tree", "sub", "b.txt"), []byte("beta"), 0o644))
	testutil.Must(t, os.WriteFile(filepath.Join(dir, "single.txt"), []byte("single"), 0o644))
	testutil.Must(t, os.WriteFile(filepath.Join(dir, "outside.txt"), []byte("outside"), 0o644))
	return dir
}

// runLandlockRole runs role of the helper test helper where the kernel
// has Landlock, in parallel with the other tests, with the files of
// sandboxFiles in the directory PRIVSEP_TEST_DIR names.
func runLandlockRole(t *testing.T, helper, role string) {
	t.Helper()
	t.Parallel()
	needLandlock(t)
	runRole(t, helper, role, "PRIVSEP_TEST_DIR="+sandboxFiles(t))
}

// runLandlockRoles runs each of roles, of the helper test helper, as a
// subtest of t named for it (runLandlockRole).
func runLandlockRoles(t *testing.T, helper string, roles ...string) {
	for _, role := range roles {
		t.Run(role, func(t *testing.T) { runLandlockRole(t, helper, role) })
	}
}

// checkLandlockResult checks what Landlock reported, and that another
// goroutine, on another thread, is restricted too.
func checkLandlockResult(t *testing.T, res parent.LandlockResult, abi int, probe string) {
	t.Helper()
	if res.ABI != abi {
		t.Errorf("Landlock reports ABI %d, the kernel says %d", res.ABI, abi)
	}
	fmt.Printf("%sLandlock ABI %d, coverage %v, not applied %q (Go alone could reach every thread: %v)\n",
		notePrefix, res.ABI, res.Coverage, res.NotApplied, !goCannotReachAllThreads())
	if res.Coverage != parent.AllThreads {
		t.Errorf("Landlock reports coverage %v, want %v", res.Coverage, parent.AllThreads)
	}
	errc := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: a thread of its own, thrown away
		f, err := os.Open(probe)
		if err == nil {
			f.Close()
		}
		errc <- err
	}()
	if err := <-errc; !errors.Is(err, syscall.EACCES) {
		t.Errorf("another goroutine opening %s gets %v, want EACCES", probe, err)
	}
}

// mptcpUnfiltered says that privsep cannot refuse MPTCP sockets here
// (linux/386), so restricting TCP is an error: tests whose subject is not
// TCP then set AnyTCP, and still test what they test.
// TestHostileLandlockMPTCP tests that case itself.
func mptcpUnfiltered() bool { return !parent.TCPRestrictable() }

// denied checks that opening path with flag fails with EACCES.
func denied(t *testing.T, path string, flag int) {
	t.Helper()
	f, err := os.OpenFile(path, flag, 0o644)
	if err == nil {
		f.Close()
		t.Errorf("open %s (flag %#x) under Landlock: opened, want EACCES", path, flag)
		return
	}
	if !errors.Is(err, syscall.EACCES) {
		t.Errorf("open %s (flag %#x) under Landlock: %v, want EACCES", path, flag, err)
	}
}

// TestLandlock runs the roles of this file that need Landlock and the
// files of sandboxFiles, each a subtest of its own.
func TestLandlock(t *testing.T) {
	t.Parallel()
	runLandlockRoles(t, "TestHelperSandbox", "landlock-deny-all", "landlock-read-only")
}

// roleLandlockDenyAll is the acceptance test: with the zero
// LandlockConfig every filesystem access is denied, and an opener started
// before still serves what its rule allows.
func roleLandlockDenyAll(t *testing.T) {
	dir := os.Getenv("PRIVSEP_TEST_DIR")
	allowed := filepath.Join(dir, "tree", "a.txt")
	outside := filepath.Join(dir, "outside.txt")
	abi := testutil.LandlockABI()
	runtime.LockOSThread()
	o := start(t, parent.Config{Rules: []string{allowed}})

	res, err := parent.Landlock(parent.LandlockConfig{AnyTCP: mptcpUnfiltered()})
	if err != nil {
		t.Fatalf("Landlock: %v", err)
	}
	checkLandlockResult(t, res, abi, outside)
	if v, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); err != nil || v != 1 {
		t.Errorf("PR_GET_NO_NEW_PRIVS after Landlock: %d, %v; want 1 (Landlock sets it)", v, err)
	}

	// Everything is refused on this thread: reading files anywhere,
	// listing directories, creating, removing.
	for _, p := range []string{"/etc/hostname", "/etc/passwd", "/proc/self/status", allowed, outside, os.Args[0]} {
		if _, err := os.Stat(p); err == nil { // stat is not a Landlock right
			denied(t, p, os.O_RDONLY)
		}
	}
	for _, p := range []string{"/", "/tmp", dir} {
		denied(t, p, os.O_RDONLY)
	}
	denied(t, outside, os.O_WRONLY)
	denied(t, filepath.Join(dir, "new"), os.O_WRONLY|os.O_CREATE)
	if _, err := os.Stat(filepath.Join(dir, "new")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat of the refused new file: %v, want it not created", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); !errors.Is(err, syscall.EACCES) {
		t.Errorf("mkdir under Landlock: %v, want EACCES", err)
	}
	if err := os.Remove(outside); !errors.Is(err, syscall.EACCES) {
		t.Errorf("remove under Landlock: %v, want EACCES", err)
	}
	if _, _, err := run(t, "/bin/true"); !errors.Is(err, syscall.EACCES) {
		t.Errorf("running /bin/true under Landlock: %v, want EACCES", err)
	}

	// The opener still serves what its rule allows, and only that.
	if got, err := read(t, o, allowed); err != nil || got != "alpha" {
		t.Errorf("reading %s through the opener under Landlock: %q, %v; want %q", allowed, got, err, "alpha")
	}
	if got, err := read(t, o, outside); !errors.Is(err, parent.ErrDenied) {
		t.Errorf("reading %s through the opener: %q, %v; want a policy denial", outside, got, err)
	}

	// A new opener cannot start: its program cannot be run from here. The
	// failure is an error, at once.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if o2, err := parent.Start(ctx, parent.Config{Rules: []string{allowed}}); err == nil {
		o2.Close()
		t.Errorf("Start under Landlock: started an opener, want an error")
	} else if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Start under Landlock: %v, want a permission error", err)
	}

	if err := o.Close(); err != nil {
		t.Errorf("closing the opener: %v", err)
	}
}

// roleLandlockReadOnly: ReadOnly paths stay readable, and nothing else.
func roleLandlockReadOnly(t *testing.T) {
	dir := os.Getenv("PRIVSEP_TEST_DIR")
	tree := filepath.Join(dir, "tree")
	abi := testutil.LandlockABI()
	runtime.LockOSThread()
	missing := filepath.Join(dir, "missing")
	res, err := parent.Landlock(parent.LandlockConfig{
		ReadOnly:     []string{tree, filepath.Join(dir, "single.txt"), missing},
		AllowMissing: true,
		// With a kernel that knows every right, best effort changes nothing.
		BestEffort: true,
	})
	if err != nil {
		t.Fatalf("Landlock: %v", err)
	}
	if !slices.Equal(res.Missing, []string{missing}) {
		t.Errorf("Landlock reports missing paths %q, want %q", res.Missing, missing)
	}
	// Where MPTCP sockets cannot be refused (linux/386), that and only
	// that is reported; the file rules below hold all the same.
	var want []string
	if mptcpUnfiltered() {
		want = []string{"IPPROTO_MPTCP"}
	}
	if abi >= 6 && !slices.Equal(res.NotApplied, want) {
		t.Errorf("Landlock with ABI %d on %s reports %q not applied, want %q", abi, runtime.GOARCH, res.NotApplied, want)
	}
	checkLandlockResult(t, res, abi, filepath.Join(dir, "outside.txt"))

	for path, want := range map[string]string{
		filepath.Join(tree, "a.txt"):        "alpha",
		filepath.Join(tree, "sub", "b.txt"): "beta",
		filepath.Join(dir, "single.txt"):    "single",
	} {
		if b, err := os.ReadFile(path); err != nil || string(b) != want {
			t.Errorf("reading %s, beneath a ReadOnly path: %q, %v; want %q", path, b, err, want)
		}
	}
	for _, d := range []string{tree, filepath.Join(tree, "sub")} {
		if names, err := os.ReadDir(d); err != nil || len(names) == 0 {
			t.Errorf("listing %s, a ReadOnly tree: %v, %v", d, names, err)
		}
	}
	denied(t, filepath.Join(dir, "outside.txt"), os.O_RDONLY)
	denied(t, dir, os.O_RDONLY)
	denied(t, "/etc/passwd", os.O_RDONLY)
	denied(t, filepath.Join(tree, "a.txt"), os.O_WRONLY)
	denied(t, filepath.Join(tree, "a.txt"), os.O_RDWR)
	denied(t, filepath.Join(dir, "single.txt"), os.O_WRONLY)
	denied(t, filepath.Join(tree, "new"), os.O_WRONLY|os.O_CREATE)
	if err := os.Mkdir(filepath.Join(tree, "d"), 0o755); !errors.Is(err, syscall.EACCES) {
		t.Errorf("mkdir in a ReadOnly tree: %v, want EACCES", err)
	}
	if err := os.Remove(filepath.Join(tree, "a.txt")); !errors.Is(err, syscall.EACCES) {
		t.Errorf("remove in a ReadOnly tree: %v, want EACCES", err)
	}
	if abi >= 3 {
		if err := os.Truncate(filepath.Join(tree, "a.txt"), 0); !errors.Is(err, syscall.EACCES) {
			t.Errorf("truncate in a ReadOnly tree (ABI %d): %v, want EACCES", abi, err)
		}
	}
	if err := os.Symlink("a.txt", filepath.Join(tree, "link")); !errors.Is(err, syscall.EACCES) {
		t.Errorf("symlink in a ReadOnly tree: %v, want EACCES", err)
	}
}

// TestLandlockInheritedByExec: a program run from the restricted thread is
// restricted too, and so is what it runs.
func TestLandlockInheritedByExec(t *testing.T) {
	if _, err := os.Stat("/bin/cat"); err != nil {
		t.Skipf("no /bin/cat: %v", err)
	}
	runLandlockRole(t, "TestHelperSandbox", "landlock-exec")
}

func roleLandlockExec(t *testing.T) {
	dir := os.Getenv("PRIVSEP_TEST_DIR")
	tree := filepath.Join(dir, "tree")
	outside := filepath.Join(dir, "outside.txt")
	runtime.LockOSThread()
	// Enough for a dynamically linked cat to start, and the tree.
	if _, err := parent.Landlock(parent.LandlockConfig{ReadOnly: []string{"/usr", "/bin", "/lib", "/lib64", tree}, AnyTCP: mptcpUnfiltered()}); err != nil {
		t.Fatalf("Landlock: %v", err)
	}
	out, stderr, err := run(t, "/bin/cat", filepath.Join(tree, "a.txt"))
	if err != nil || out != "alpha" {
		t.Fatalf("cat of a file beneath a ReadOnly path: %q, %v (stderr %q); want %q", out, err, stderr, "alpha")
	}
	for _, p := range []string{outside, "/etc/passwd"} {
		out, stderr, err := run(t, "/bin/cat", p)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 || out != "" || !strings.Contains(stderr, "Permission denied") {
			t.Errorf("cat %s from the restricted thread: %q, %v (stderr %q); want it refused", p, out, err, stderr)
		}
	}
	// And the program's own children.
	out, stderr, err = run(t, "/bin/sh", "-c", "cat "+outside+"; echo status $?")
	if err != nil || !strings.HasPrefix(out, "status ") || out == "status 0\n" || !strings.Contains(stderr, "Permission denied") {
		t.Errorf("sh -c 'cat %s': %q, %v (stderr %q); want cat refused", outside, out, err, stderr)
	}
}
