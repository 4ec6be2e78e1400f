//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/privsep-go/privsep/internal/testutil"
)

// TestExampleHTTPD builds examples/httpd and runs it as root on a port
// below 1024: it must serve a root-only page while running as nobody.
func TestExampleHTTPD(t *testing.T) {
	testutil.NeedRoot(t, "the example binds a privileged port and drops to nobody")
	goTool, err := findGo()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "httpd")
	if out, err := exec.Command(goTool, "build", "-o", bin, "./examples/httpd").CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/httpd: %v\n%s", err, out)
	}
	www, err := os.MkdirTemp("", "privsep-www-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(www)
	const page = "<h1>served by nobody</h1>\n"
	// Root-only: nobody can read it only through the opener.
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte(page), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePrivilegedPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-dir", www, "-addr", addr, "-print-ready")
	var stderr testutil.LogBuffer // read while the copy goroutine may still write
	cmd.Stderr = &stderr
	stdout := startReading(t, cmd)
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("no ready line: %v; stderr: %s", err, stderr.String())
	}
	if want := "ready " + addr + " uid=65534\n"; line != want {
		t.Fatalf("ready line: got %q, want %q", line, want)
	}
	resp, err := http.Get("http://" + addr + "/index.html")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != page {
		t.Fatalf("GET /index.html: got %d %q, want 200 %q", resp.StatusCode, body, page)
	}
	// The server process really is nobody.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(status), "\nUid:\t65534\t65534\t65534\t65534\n") {
		t.Errorf("the server's uids are not all 65534:\n%s", status)
	}
	// Outside the tree, nothing is served.
	resp, err = http.Get("http://" + addr + "/../../etc/shadow")
	if err == nil {
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), "root:") {
			t.Errorf("served /etc/shadow: %q", body)
		}
	}
}

// freePrivilegedPort finds a port below 1024 that nothing listens on.
func freePrivilegedPort(t *testing.T) int {
	t.Helper()
	for port := 881; port < 1024; port++ {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Skip("no free port below 1024 on 127.0.0.1")
	return 0
}
