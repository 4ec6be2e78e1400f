//go:build linux

package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/privsep-go/privsep/internal/testutil"
)

// TestExecListen: privsep exec --listen hands a socket-activation-aware
// program a listening socket it could not have bound itself, as nobody.
// The program is a few lines of Python that take descriptor 3 the way
// sd_listen_fds(3) describes and serve one HTTP request.
func TestExecListen(t *testing.T) {
	testutil.NeedRoot(t, "binds a port below 1024 and drops to nobody")
	python := nobodyPython(t, "it plays the socket-activated server")
	port := freePrivilegedPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	const server = `
import os, socket
assert os.environ["LISTEN_PID"] == str(os.getpid()), "LISTEN_PID is not ours"
assert os.environ["LISTEN_FDS"] == "1" and os.environ["LISTEN_FDNAMES"] == "http"
s = socket.socket(fileno=3)
c, _ = s.accept()
c.recv(4096)
body = "uid=%d type=%d" % (os.getuid(), s.type)
c.sendall(("HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)).encode())
c.close()
`
	done := make(chan result, 1)
	go func() {
		done <- privsep(t, nil, "exec", "--listen", "http=tcp:"+addr, "--user", "nobody", "--", python, "-c", server)
	}()
	_, body, err := getWhenUp("http://"+addr+"/", 15*time.Second)
	if err != nil {
		t.Fatalf("the server never answered: %v", err)
	}
	r := <-done
	if r.code != 0 {
		t.Fatalf("privsep exec: exit %d, stderr %q", r.code, r.stderr)
	}
	if !strings.HasPrefix(body, "uid=65534 ") {
		t.Errorf("body: got %q, want it served by uid 65534", body)
	}
	// Without a rule for it, a listen is refused before CMD runs: 125.
	r = privsep(t, nil, "exec", "--allow-listen", "tcp:127.0.0.1:1", "--listen", "tcp:"+addr, "--", "true")
	if r.code != exitExecFailed || !strings.Contains(r.stderr, "denied by policy") {
		t.Errorf("denied --listen: got exit %d, stderr %q; want 125 and a denial", r.code, r.stderr)
	}
	// Nothing listens there any more.
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("something still listens on %s", addr)
	}
}

// nobodyPython returns a python3 that nobody may execute (not one under
// /root), for a test that runs it as nobody, or skips the test; why says
// what the program does in the test.
func nobodyPython(t *testing.T, why string) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"} {
		if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o001 != 0 {
			return p
		}
	}
	t.Skip("no python3 that nobody may run: " + why)
	return ""
}

// getWhenUp GETs url until a server answers, for up to timeout, and
// returns the answer's status code and body, or the last error.
func getWhenUp(url string, timeout time.Duration) (int, string, error) {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode, string(b), err
		}
		if time.Now().After(deadline) {
			return 0, "", err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
