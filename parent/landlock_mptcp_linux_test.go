package parent_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/parent"
)

// TestLandlockMPTCP: Landlock's TCP rules do not cover MPTCP sockets. Where
// privsep has the filter that refuses them (TCPRestrictable), restricting
// TCP succeeds and an MPTCP socket, and net.Listen's default MPTCP bind,
// are refused. Where it has none (linux/386), restricting TCP without
// BestEffort is an error naming IPPROTO_MPTCP that applies nothing; with
// BestEffort IPPROTO_MPTCP alone is reported not applied, an MPTCP socket
// can indeed be made, and everything else holds: files, plain TCP binds,
// the abstract unix and signal scopes.
func TestLandlockMPTCP(t *testing.T) {
	t.Parallel()
	if abi := needLandlock(t); abi < 6 {
		t.Skipf("needs Landlock ABI 6 (TCP rules and scopes); the kernel has %d", abi)
	}
	runRole(t, "TestHelperSandbox", "landlock-mptcp", "PRIVSEP_TEST_DIR="+sandboxFiles(t))
}

func roleLandlockMPTCP(t *testing.T) {
	dir := os.Getenv("PRIVSEP_TEST_DIR")
	outside := filepath.Join(dir, "outside.txt")
	tree := filepath.Join(dir, "tree")
	abstract, err := net.Listen("unix", "@privsep-test-mptcp-"+filepath.Base(dir))
	if err != nil {
		t.Fatalf("abstract listener, made outside the sandbox: %v", err)
	}
	defer abstract.Close()
	runtime.LockOSThread()
	cfg := parent.LandlockConfig{ReadOnly: []string{tree}}

	if !parent.TCPRestrictable() {
		res, err := parent.Landlock(cfg)
		var ue *parent.LandlockUnsupportedError
		if !errors.As(err, &ue) || !slices.Equal(ue.Missing, []string{"IPPROTO_MPTCP"}) {
			t.Fatalf("on %s, Landlock restricting TCP: %+v, %v; want a *LandlockUnsupportedError naming IPPROTO_MPTCP", runtime.GOARCH, res, err)
		}
		if b, err := os.ReadFile(outside); err != nil || string(b) != "outside" {
			t.Fatalf("after the refused Landlock call, reading %s: %q, %v; want nothing restricted", outside, b, err)
		}
		cfg.BestEffort = true
	}
	res, err := parent.Landlock(cfg)
	if err != nil {
		t.Fatalf("Landlock(%+v): %v", cfg, err)
	}
	var want []string
	if !parent.TCPRestrictable() {
		want = []string{"IPPROTO_MPTCP"}
	}
	if !slices.Equal(res.NotApplied, want) {
		t.Errorf("Landlock on %s reports %q not applied, want %q", runtime.GOARCH, res.NotApplied, want)
	}

	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 262) // IPPROTO_MPTCP
	if err == nil {
		unix.Close(fd)
	}
	if parent.TCPRestrictable() {
		if !errors.Is(err, syscall.EACCES) {
			t.Errorf("making an MPTCP socket under Landlock on %s: %v, want EACCES from the filter", runtime.GOARCH, err)
		}
		if l, err := net.Listen("tcp4", "127.0.0.1:0"); !errors.Is(err, syscall.EACCES) {
			if l != nil {
				l.Close()
			}
			t.Errorf("net.Listen (MPTCP where it can) under Landlock: %v, want EACCES", err)
		}
	} else if err != nil && !errors.Is(err, syscall.EPROTONOSUPPORT) && !errors.Is(err, syscall.ENOPROTOOPT) {
		// What NotApplied names stays allowed (unless the kernel lacks
		// MPTCP or has it off).
		t.Errorf("making an MPTCP socket on %s, reported not applied: %v, want it made", runtime.GOARCH, err)
	}

	// Everything else is applied.
	denied(t, outside, os.O_RDONLY)
	if b, err := os.ReadFile(filepath.Join(tree, "a.txt")); err != nil || string(b) != "alpha" {
		t.Errorf("reading beneath ReadOnly: %q, %v", b, err)
	}
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	if l, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0"); !errors.Is(err, syscall.EACCES) {
		if l != nil {
			l.Close()
		}
		t.Errorf("binding plain TCP under Landlock: %v, want EACCES", err)
	}
	if c, err := net.Dial("unix", abstract.Addr().String()); !errors.Is(err, syscall.EPERM) {
		if c != nil {
			c.Close()
		}
		t.Errorf("connecting to an abstract socket made outside: %v, want EPERM", err)
	}
	if err := unix.Kill(1, 0); !errors.Is(err, syscall.EPERM) {
		t.Errorf("kill(1, 0) under the signal scope: %v, want EPERM", err)
	}
}
