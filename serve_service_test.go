//go:build linux

package main

// privsep serve as a service: SIGHUP reloads the policy, SIGTERM drains and
// removes the socket, and systemd socket activation (LISTEN_FDS).

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/privsep-go/privsep/internal/testutil"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/parent"
)

// readVia opens path through o and returns its content, or the error.
func readVia(o *parent.Opener, path string) (string, error) {
	f, err := o.Open(context.Background(), path, os.O_RDONLY, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	return string(b), err
}

// TestServeSIGHUPReload: a new policy reaches new sessions only; a bad one
// is logged with its file and line and the old one kept; SIGTERM still
// drains and removes the socket.
func TestServeSIGHUPReload(t *testing.T) {
	t.Parallel()
	dir := publicDir(t)
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	writeMode(t, a, "A\n", 0o600)
	writeMode(t, b, "B\n", 0o600)
	pol := filepath.Join(dir, "policy")
	writeFile(t, pol, a+"\n")
	sock := filepath.Join(dir, "p.sock")
	s := startServe(t, sock, "--policy", pol)

	old, err := parent.Dial(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if _, err := readVia(old, b); err == nil {
		t.Fatalf("%s before the reload: allowed, want denied", b)
	}

	writeFile(t, pol, a+"\n"+b+"\n")
	testutil.Must(t, s.cmd.Process.Signal(syscall.SIGHUP))
	if l := s.log.await("policy reloaded"); len(l) != 1 {
		t.Fatalf("after SIGHUP: got %q, want one reload line; log:\n%s", l, s.log)
	}
	r := privsep(t, nil, "get", "--socket", sock, b)
	checkCode(t, r, 0)
	checkStdout(t, r, "B\n")
	// The session opened before keeps its policy.
	if _, err := readVia(old, b); err == nil {
		t.Errorf("%s in a session opened before the reload: allowed, want the old policy (denied)", b)
	}
	if got, err := readVia(old, a); err != nil || got != "A\n" {
		t.Errorf("%s in the old session: %q, %v; want A", a, got, err)
	}

	// A bad policy: logged at error level naming the file and line, the
	// old one kept.
	writeFile(t, pol, a+"\nnot-absolute\n")
	testutil.Must(t, s.cmd.Process.Signal(syscall.SIGHUP))
	l := s.log.await("reload failed")
	if len(l) != 1 || !strings.Contains(l[0], "[ERROR]") || !strings.Contains(l[0], pol+":2") {
		t.Fatalf("bad policy: got %q, want one error line naming %s:2; log:\n%s", l, pol, s.log)
	}
	r = privsep(t, nil, "get", "--socket", sock, b)
	checkCode(t, r, 0)
	checkStdout(t, r, "B\n")

	code, took := s.stop(t)
	if code != 0 || took > 8*time.Second {
		t.Errorf("after SIGTERM: exit status %d after %v, want 0 promptly", code, took)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after SIGTERM: got %v, want it removed", err)
	}
}

// TestServeSocketActivation passes a listening socket at descriptor 3 with
// LISTEN_FDS and LISTEN_PID, as systemd does, and gets a file through it.
func TestServeSocketActivation(t *testing.T) {
	t.Parallel()
	dir, file := publicFile(t, "f", "F\n", 0o600)
	sock := filepath.Join(dir, "act.sock")
	ln, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	lf := os.NewFile(uintptr(ln), "listener")
	defer lf.Close()
	testutil.Must(t, unix.Bind(ln, &unix.SockaddrUnix{Name: sock}))
	testutil.Must(t, unix.Listen(ln, 16))

	// LISTEN_PID must be the server's own pid: sh sets it to its pid and
	// execs privsep, which keeps that pid.
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" serve --allow "$1"`, binary, file)
	cmd.ExtraFiles = []*os.File{lf}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	testutil.Must(t, cmd.Start())
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(cmdTimeout):
			cmd.Process.Kill()
			<-exited
		}
		if code := cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("privsep serve: exit status %d; stderr:\n%s", code, stderr.String())
		}
		// systemd owns the socket file: the server leaves it.
		if _, err := os.Lstat(sock); err != nil {
			t.Errorf("socket file after the activated server ended: %v, want it kept (systemd's)", err)
		}
	}()
	// The socket listens already: no wait for the server is needed.
	o, err := parent.Dial(context.Background(), sock)
	if err != nil {
		t.Fatalf("dial: %v; stderr:\n%s", err, stderr.String())
	}
	defer o.Close()
	if got, err := readVia(o, file); err != nil || got != "F\n" {
		t.Errorf("%s through the activated server: %q, %v; stderr:\n%s", file, got, err, stderr.String())
	}
}

// TestServeSocketActivationWrongType: a stream socket at descriptor 3 is a
// clear error, not a server that fails later.
func TestServeSocketActivationWrongType(t *testing.T) {
	t.Parallel()
	dir := publicDir(t)
	ln, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	lf := os.NewFile(uintptr(ln), "listener")
	defer lf.Close()
	testutil.Must(t, unix.Bind(ln, &unix.SockaddrUnix{Name: filepath.Join(dir, "s.sock")}))
	testutil.Must(t, unix.Listen(ln, 16))
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" serve --allow /etc/hostname`, binary)
	cmd.ExtraFiles = []*os.File{lf}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "descriptor 3 is not a SOCK_SEQPACKET socket") {
		t.Errorf("stream socket: got %v, %q; want exit 1 naming the socket type", err, out)
	}
}
