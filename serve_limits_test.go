//go:build linux

package main

// privsep serve against one client that takes every session it can: the
// per-uid limit and the idle timeout, end to end, with privsep get as the
// other clients.

import (
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/protocol"
)

// holdSession connects to sock as uid (testutil.DialAs), says hello and
// returns the connection, which the test closes at its end.
func holdSession(t *testing.T, sock string, uid uint32) int {
	t.Helper()
	fd := testutil.DialAs(t, sock, uid)
	t.Cleanup(func() { unix.Close(fd) })
	hello, err := protocol.AppendHello(nil, &protocol.Hello{Version: protocol.Version})
	testutil.Must(t, err)
	testutil.Must(t, protocol.Send(fd, hello, nil, 0))
	testutil.Must(t, unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 30}))
	buf, oob := make([]byte, protocol.MaxMessage), make([]byte, protocol.OOBSize)
	m, err := protocol.Recv(fd, buf, oob, nil, 0)
	if err != nil || m.Type != protocol.TypeReady {
		protocol.CloseFDs(m.FDs)
		t.Fatalf("session as uid %d: got %s, %v; want ready", uid, m.Type, err)
	}
	return fd
}

// TestServeSessionLimit: uid 65534 holds its two sessions and idles;
// privsep get as that uid is refused with the limit named, while root
// still gets its file. Closing one session frees a slot.
func TestServeSessionLimit(t *testing.T) {
	t.Parallel()
	testutil.NeedRoot(t, "clients with other uids")
	dir, file := publicFile(t, "f", "served\n", 0o644)
	sock := filepath.Join(dir, "s.sock")
	s := startServe(t, sock, "--allow", file, "--allow-uid", "65534", "--allow-uid", "0", "--socket-mode", "0666",
		"--max-sessions-per-uid", "2", "--idle-timeout", "1h")
	first := holdSession(t, sock, 65534)
	holdSession(t, sock, 65534)

	r := privsep(t, as(65534, 65534), "get", "--socket", sock, file)
	checkCode(t, r, 1)
	checkStdout(t, r, "")
	checkStderrLines(t, r, "privsep: dial "+sock+": the server refused this connection: uid 65534 has as many sessions as the per-uid limit allows (privsep serve --max-sessions-per-uid) (too many users)\n")
	if l := s.log.await("refused connection", "uid=65534", "max_sessions_per_uid=2"); len(l) != 1 {
		t.Errorf("server log: got %q, want one refusal naming uid 65534 and the limit; log:\n%s", l, s.log)
	}

	r = privsep(t, nil, "get", "--socket", sock, file)
	checkCode(t, r, 0)
	checkStdout(t, r, "served\n")

	unix.Close(first)
	if l := s.log.await("client disconnected", "uid=65534"); len(l) != 1 {
		t.Fatalf("server log: want the closed session's end; log:\n%s", s.log)
	}
	r = privsep(t, as(65534, 65534), "get", "--socket", sock, file)
	checkCode(t, r, 0)
	checkStdout(t, r, "served\n")
}

// TestServeLimitFlags: serve's usage names the limit flags and their
// defaults (TestServeUsage has their bad values).
func TestServeLimitFlags(t *testing.T) {
	t.Parallel()
	r := privsep(t, nil, "serve", "--help")
	for _, f := range []string{"--max-sessions-per-uid N", "--idle-timeout D", "-max-sessions-per-uid N", "(default 16)", "(default 5m0s)"} {
		if !strings.Contains(r.stdout, f) {
			t.Errorf("serve --help does not mention %q", f)
		}
	}
}
