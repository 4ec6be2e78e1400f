//go:build linux

package parent_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/parent"
)

func TestListenTCPServesHTTP(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	o := start(t, parent.Config{Listen: []string{"tcp:" + addr}})
	fdsBefore := testutil.FDs(t, 0)
	ln, err := o.Listen(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if got := ln.Addr().String(); got != addr {
		t.Errorf("listener address: got %s, want %s", got, addr)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })}
	go srv.Serve(ln)
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hello" {
		t.Errorf("GET: got %q, want %q", b, "hello")
	}
	srv.Close()
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(2 * time.Second)
	for testutil.FDs(t, 0) != fdsBefore && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := testutil.FDs(t, 0); got != fdsBefore {
		t.Errorf("descriptors after closing the listener: got %d, want %d", got, fdsBefore)
	}
}

func TestListenRefusals(t *testing.T) {
	o := start(t, parent.Config{Listen: []string{"tcp:127.0.0.1:0", "udp:127.0.0.1:0"}})
	ctx := context.Background()
	for _, tc := range []struct {
		network, addr string
		is            error
	}{
		{"tcp", "127.0.0.1:8080", parent.ErrDenied},             // no rule
		{"tcp4", "127.0.0.1:0", parent.ErrDenied},               // the rule says tcp, not tcp4
		{"tcp", "localhost:0", syscall.EINVAL},                  // names are never resolved
		{"tcp", "127.0.0.1:99999", syscall.EINVAL},              // not a port
		{"unix", "relative.sock", syscall.EINVAL},               // not absolute
		{"udp", "127.0.0.1:0", nil},                             // only ListenPacket: checked below
		{"ip", "127.0.0.1", nil},                                // unknown network
		{"tcp", "[::1]:0", parent.ErrDenied},                    // a different address
		{"tcp", "127.0.0.1:0", nil},                             // allowed
		{"tcp6", "127.0.0.1:0", syscall.EINVAL},                 // tcp6 with an IPv4 address
		{"unix", "/tmp/privsep-no-rule.sock", parent.ErrDenied}, // no rule
	} {
		ln, err := o.Listen(ctx, tc.network, tc.addr)
		if tc.network == "tcp" && tc.addr == "127.0.0.1:0" {
			if err != nil {
				t.Errorf("Listen(%s, %s): %v", tc.network, tc.addr, err)
			} else {
				ln.Close()
			}
			continue
		}
		if err == nil {
			ln.Close()
			t.Errorf("Listen(%s, %s): got a listener, want an error", tc.network, tc.addr)
			continue
		}
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "listen" || oe.Net != tc.network {
			t.Errorf("Listen(%s, %s): got %#v, want a *net.OpError for listen %s", tc.network, tc.addr, err, tc.network)
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("Listen(%s, %s): %v does not match %v", tc.network, tc.addr, err, tc.is)
		}
	}
	// A port already taken is the kernel's EADDRINUSE, not a refusal.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	o2 := start(t, parent.Config{Listen: []string{"tcp:" + busy.Addr().String()}})
	if _, err := o2.Listen(ctx, "tcp", busy.Addr().String()); !errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, parent.ErrDenied) {
		t.Errorf("Listen on a busy port: got %v, want EADDRINUSE", err)
	}
}

func TestListenPacketUDP(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	o := start(t, parent.Config{Listen: []string{"udp:" + addr}})
	pc, err := o.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	n, _, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Errorf("ReadFrom: got %q, %v; want ping", buf[:n], err)
	}
	if _, err := o.Listen(context.Background(), "udp", addr); err == nil {
		t.Error("Listen(udp): got a listener, want an error (UDP is ListenPacket)")
	}
}

func TestListenUnixSocketMode(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "app.sock")
	stale := filepath.Join(dir, "stale.sock")
	notSock := filepath.Join(dir, "file")
	testutil.Must(t, os.WriteFile(notSock, nil, 0o644))
	pol, err := parent.LoadPolicy(nil, nil, "unix:"+sock, "unix:"+notSock)
	testutil.Must(t, err)
	// A stale socket file, and a rule that may replace it.
	s, err := net.Listen("unix", stale)
	testutil.Must(t, err)
	s.(*net.UnixListener).SetUnlinkOnClose(false)
	s.Close()
	policyFile := filepath.Join(dir, "p.policy")
	testutil.Must(t, os.WriteFile(policyFile, []byte("listen unix:"+stale+" mode=0600 replace\n"), 0o644))
	pol2, err := parent.LoadPolicy([]string{policyFile}, nil)
	testutil.Must(t, err)

	old := unix.Umask(0o022)
	defer unix.Umask(old)
	o := start(t, parent.Config{Policy: pol})
	ln, err := o.Listen(context.Background(), "unix", sock)
	testutil.Must(t, err)
	defer ln.Close()
	st, err := os.Lstat(sock)
	testutil.Must(t, err)
	if st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o660 {
		t.Errorf("socket file: got %v, want a socket with mode 0660 (the default) despite umask 022", st.Mode())
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Errorf("connecting to the opener's unix listener: %v", err)
	} else {
		c.Close()
	}
	// An existing file that is not a socket is never replaced.
	if _, err := o.Listen(context.Background(), "unix", notSock); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("Listen over a regular file: got %v, want EADDRINUSE", err)
	}
	if b, err := os.ReadFile(notSock); err != nil || len(b) != 0 {
		t.Errorf("the regular file changed: %q, %v", b, err)
	}

	o2 := start(t, parent.Config{Policy: pol2})
	ln2, err := o2.Listen(context.Background(), "unix", stale)
	if err != nil {
		t.Fatalf("Listen replacing a stale socket: %v", err)
	}
	defer ln2.Close()
	if st, err := os.Lstat(stale); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("replaced socket: got %v, %v; want mode 0600", st.Mode(), err)
	}
	if !strings.Contains(pol2.Strings()[0], "replace") {
		t.Errorf("policy line %q lost its replace option", pol2.Strings()[0])
	}
}

// TestListenPrivilegedPortAfterDrop is the point of listen rules: the
// opener binds a port below 1024, and a process that has dropped to nobody
// serves on it. It runs in a subprocess, since the drop cannot be undone.
func TestListenPrivilegedPortAfterDrop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: binds a port below 1024 and drops to nobody")
	}
	if os.Getenv("PRIVSEP_TEST_LISTEN_ROLE") == "1" {
		listenRole(t)
		return
	}
	port := 0
	for p := 900; p < 1024; p++ {
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			ln.Close()
			port = p
			break
		}
	}
	if port == 0 {
		t.Skip("no free port below 1024")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := execCommand(ctx, "-test.run=^TestListenPrivilegedPortAfterDrop$", "-test.v")
	cmd.Env = append(os.Environ(), "PRIVSEP_TEST_LISTEN_ROLE=1", fmt.Sprintf("PRIVSEP_TEST_LISTEN_PORT=%d", port))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "served as nobody") {
		t.Fatalf("role: %v\n%s", err, out)
	}
}

func listenRole(t *testing.T) {
	addr := "127.0.0.1:" + os.Getenv("PRIVSEP_TEST_LISTEN_PORT")
	o, err := parent.Start(context.Background(), parent.Config{Listen: []string{"tcp:" + addr}})
	testutil.Must(t, err)
	ln, err := o.Listen(context.Background(), "tcp", addr)
	testutil.Must(t, err)
	cred, err := parent.LookupCredential("nobody", "")
	testutil.Must(t, err)
	testutil.Must(t, parent.DropPrivileges(cred))
	// As nobody, binding the port directly is refused.
	if l, err := net.Listen("tcp", "127.0.0.1:1"); err == nil {
		l.Close()
		t.Fatal("nobody could bind port 1")
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "uid %d", os.Getuid())
	})}
	go srv.Serve(ln)
	resp, err := http.Get("http://" + addr + "/")
	testutil.Must(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "uid 65534" {
		t.Fatalf("GET: got %q, want uid 65534", b)
	}
	srv.Close()
	t.Log("served as nobody")
}

// freePort finds a free TCP and UDP port on 127.0.0.1 above 1024.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testutil.Must(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// execCommand runs this test binary again with args.
func execCommand(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, os.Args[0], args...)
}
