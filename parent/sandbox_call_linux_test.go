//go:build linux

package parent_test

// Tests of Sandbox and of the Landlock rights beyond read-only trees. Each
// sandboxes a re-executed test binary (runRole).

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/parent"
)

// TestHelperSandboxCall is not a test: it plays a role of
// sandbox_call_linux_test.go in a re-executed test binary (see runRole).
func TestHelperSandboxCall(t *testing.T) {
	playRole(t, map[string]func(*testing.T){
		"landlock-read-write":    roleLandlockReadWrite,
		"landlock-missing":       roleLandlockMissing,
		"sandbox-probe-in-rules": roleSandboxProbeInRules,
		"sandbox-root-rule":      roleSandboxRootRule,
		"sandbox-keep-ids":       roleSandboxKeepIDs,
	})
}

// TestSandboxCall runs the roles of this file that need Landlock and the
// files of sandboxFiles, each a subtest of its own.
func TestSandboxCall(t *testing.T) {
	t.Parallel()
	runLandlockRoles(t, "TestHelperSandboxCall", "landlock-read-write", "landlock-missing", "sandbox-probe-in-rules", "sandbox-root-rule")
}

// roleLandlockReadWrite: a ReadWrite tree keeps every right, a ReadOnly
// one beside it only reading, and the rest nothing.
func roleLandlockReadWrite(t *testing.T) {
	dir := os.Getenv("PRIVSEP_TEST_DIR")
	rw := filepath.Join(dir, "tree")
	abi := testutil.LandlockABI()
	if _, err := parent.Landlock(parent.LandlockConfig{ReadWrite: []string{rw}, AnyTCP: mptcpUnfiltered()}); err != nil {
		t.Fatalf("Landlock: %v", err)
	}
	a := filepath.Join(rw, "a.txt")
	if err := os.WriteFile(a, []byte("changed"), 0o644); err != nil {
		t.Errorf("writing %s beneath a ReadWrite tree: %v", a, err)
	}
	if abi >= 3 {
		if err := os.Truncate(a, 1); err != nil {
			t.Errorf("truncating %s beneath a ReadWrite tree: %v", a, err)
		}
	}
	if err := os.Mkdir(filepath.Join(rw, "d"), 0o755); err != nil {
		t.Errorf("mkdir beneath a ReadWrite tree: %v", err)
	}
	if err := os.Rename(filepath.Join(rw, "sub", "b.txt"), filepath.Join(rw, "d", "b.txt")); err != nil {
		t.Errorf("rename within a ReadWrite tree: %v", err)
	}
	if err := os.Remove(a); err != nil {
		t.Errorf("remove beneath a ReadWrite tree: %v", err)
	}
	denied(t, filepath.Join(dir, "outside.txt"), os.O_RDONLY)
	denied(t, filepath.Join(dir, "new"), os.O_WRONLY|os.O_CREATE)
	if err := os.Rename(filepath.Join(rw, "d", "b.txt"), filepath.Join(dir, "b.txt")); !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.EXDEV) {
		t.Errorf("rename out of a ReadWrite tree: %v, want it refused", err)
	}
}

// roleLandlockMissing: a rule path that does not exist is an error
// naming it, and nothing is restricted; AllowMissing skips it (see
// roleLandlockReadOnly).
func roleLandlockMissing(t *testing.T) {
	dir := os.Getenv("PRIVSEP_TEST_DIR")
	missing := filepath.Join(dir, "no-such-dir")
	for _, cfg := range []parent.LandlockConfig{
		{ReadOnly: []string{filepath.Join(dir, "tree"), missing}, AnyTCP: mptcpUnfiltered()},
		{ReadWrite: []string{missing}, AnyTCP: mptcpUnfiltered()},
		{ReadWrite: []string{missing}, BestEffort: true},
	} {
		_, err := parent.Landlock(cfg)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
			t.Errorf("Landlock(%+v): %v, want a not-exist error naming %s", cfg, err, missing)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "outside.txt")); err != nil || string(b) != "outside" {
		t.Errorf("after the refused Landlock calls, reading a file: %q, %v; want it unrestricted", b, err)
	}
	if _, err := parent.Sandbox(parent.SandboxConfig{Landlock: &parent.LandlockConfig{ReadOnly: []string{missing}, AnyTCP: mptcpUnfiltered()}}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Sandbox with a missing rule path: %v, want a not-exist error", err)
	}
}

// roleSandboxProbeInRules: a probe that the rules allow makes the
// verification fail, and Sandbox says so rather than report success.
func roleSandboxProbeInRules(t *testing.T) {
	dir := os.Getenv("PRIVSEP_TEST_DIR")
	tree := filepath.Join(dir, "tree")
	_, err := parent.Sandbox(parent.SandboxConfig{
		Landlock: &parent.LandlockConfig{ReadOnly: []string{tree}, AnyTCP: mptcpUnfiltered()},
		Probe:    filepath.Join(tree, "a.txt"),
	})
	if !errors.Is(err, parent.ErrSandboxVerify) {
		t.Errorf("Sandbox with a probe inside the rules: %v, want ErrSandboxVerify", err)
	}
	// A probe that does not exist proves nothing: refused before anything
	// is applied.
	if _, err := parent.Sandbox(parent.SandboxConfig{
		Landlock: &parent.LandlockConfig{AnyTCP: mptcpUnfiltered()},
		Probe:    filepath.Join(dir, "no-such-file"),
	}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Sandbox with a missing probe: %v, want a not-exist error", err)
	}
}

// roleSandboxRootRule: with the root directory as a rule, the default
// probe cannot work: an error asks for one, before anything is applied.
func roleSandboxRootRule(t *testing.T) {
	dir := os.Getenv("PRIVSEP_TEST_DIR")
	_, err := parent.Sandbox(parent.SandboxConfig{Landlock: &parent.LandlockConfig{ReadOnly: []string{"/"}, AnyTCP: mptcpUnfiltered()}})
	if err == nil || !strings.Contains(err.Error(), "Probe") {
		t.Errorf("Sandbox with / as a rule and no probe: %v, want an error asking for Probe", err)
	}
	if v := noNewPrivs(t, "/proc/self/status"); v != "0" {
		t.Errorf("NoNewPrivs %q after the refused Sandbox, want 0 (nothing applied)", v)
	}
	// A probe named, but beneath the rule /: the verification catches it.
	res, err := parent.Sandbox(parent.SandboxConfig{
		Landlock: &parent.LandlockConfig{ReadOnly: []string{"/"}, AnyTCP: true},
		Probe:    filepath.Join(dir, "outside.txt"),
	})
	if err == nil {
		t.Errorf("Sandbox with / read-only and a probe beneath it: %+v, nil; want ErrSandboxVerify", res)
	} else if !errors.Is(err, parent.ErrSandboxVerify) {
		t.Errorf("Sandbox with / read-only and a probe beneath it: %v, want ErrSandboxVerify", err)
	}
}

// TestSandboxKeepIDs: without a Credential, Sandbox keeps the ids, sets
// no_new_privs on every thread and applies Landlock: TCP to a port not
// allowed is refused, to one allowed is not, and an abstract socket made
// outside cannot be reached.
func TestSandboxKeepIDs(t *testing.T) {
	t.Parallel()
	if abi := testutil.LandlockABI(); abi < 6 {
		t.Skipf("needs Landlock ABI 6 (network rules and scopes); the kernel has %d", abi)
	}
	dir := sandboxFiles(t)
	name := "privsep-test-keep-" + filepath.Base(dir)
	ln, err := net.Listen("unix", "@"+name)
	if err != nil {
		t.Fatal(err)
	}
	testutil.AcceptAndClose(t, ln)
	ports := []string{testutil.ListenLoopback(t), testutil.ListenLoopback(t)}
	runRole(t, "TestHelperSandboxCall", "sandbox-keep-ids", "PRIVSEP_TEST_DIR="+dir,
		"PRIVSEP_TEST_ABSTRACT="+name, "PRIVSEP_TEST_ALLOWED="+ports[0], "PRIVSEP_TEST_REFUSED="+ports[1])
}

func roleSandboxKeepIDs(t *testing.T) {
	dir := os.Getenv("PRIVSEP_TEST_DIR")
	allowed, refused := os.Getenv("PRIVSEP_TEST_ALLOWED"), os.Getenv("PRIVSEP_TEST_REFUSED")
	_, port, _ := net.SplitHostPort(allowed)
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		t.Fatalf("port %q: %v", port, err)
	}
	uid := os.Geteuid()
	res, err := parent.Sandbox(parent.SandboxConfig{Landlock: &parent.LandlockConfig{
		ReadOnly: []string{filepath.Join(dir, "tree")}, ConnectTCP: []uint16{uint16(p)},
		// Where MPTCP sockets cannot be refused, the rest, TCP connect
		// rules included, is applied, and that is reported.
		BestEffort: mptcpUnfiltered(),
	}})
	if err != nil {
		t.Fatalf("Sandbox: %v", err)
	}
	if want := []string{"IPPROTO_MPTCP"}; mptcpUnfiltered() && testutil.LandlockABI() >= 6 && !slices.Equal(res.Landlock.NotApplied, want) {
		t.Errorf("Sandbox on %s reports %q not applied, want %q", runtime.GOARCH, res.Landlock.NotApplied, want)
	}
	if res.Threads < 2 || res.Landlock.Coverage != parent.AllThreads {
		t.Errorf("Sandbox reports %d threads, coverage %v; want several, all", res.Threads, res.Landlock.Coverage)
	}
	if os.Geteuid() != uid {
		t.Errorf("euid %d after Sandbox without a Credential, want %d", os.Geteuid(), uid)
	}
	if v, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); err != nil || v != 1 {
		t.Errorf("PR_GET_NO_NEW_PRIVS: %d, %v; want 1", v, err)
	}
	if c, err := net.Dial("tcp4", allowed); err != nil {
		t.Errorf("connecting to %s, an allowed port: %v", allowed, err)
	} else {
		c.Close()
	}
	if c, err := net.Dial("tcp4", refused); !errors.Is(err, syscall.EACCES) {
		if c != nil {
			c.Close()
		}
		t.Errorf("connecting to %s, a port not allowed: %v, want EACCES", refused, err)
	}
	if c, err := net.Dial("unix", "@"+os.Getenv("PRIVSEP_TEST_ABSTRACT")); !errors.Is(err, syscall.EPERM) {
		if c != nil {
			c.Close()
		}
		t.Errorf("connecting to an abstract socket made outside: %v, want EPERM", err)
	}
	// The process's own threads may still signal each other (the Go
	// runtime preempts goroutines with signals): a signal to itself works.
	if err := unix.Kill(os.Getpid(), 0); err != nil {
		t.Errorf("kill(self, 0) under the signal scope: %v", err)
	}
	// init is outside.
	if err := unix.Kill(1, 0); !errors.Is(err, syscall.EPERM) {
		t.Errorf("kill(1, 0) under the signal scope: %v, want EPERM", err)
	}
}
