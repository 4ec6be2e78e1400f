//go:build linux

package main

// The README's recipes for programs that are not Go, run as written.

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/privsep-go/privsep/internal/testutil"
)

// pythonRecipe is the README's python3 -c that serves HTTP on the socket
// privsep exec --listen passes at descriptor 3. Keep the two in step.
const pythonRecipe = `import http.server as h, socket
s = h.HTTPServer(("", 0), h.SimpleHTTPRequestHandler, bind_and_activate=False)
s.socket = socket.socket(fileno=3); s.serve_forever()`

// TestRecipePythonHTTPServer runs Python's http.server as nobody on a
// privileged port, the socket from privsep exec --listen, and fetches a
// file from it.
func TestRecipePythonHTTPServer(t *testing.T) {
	testutil.NeedRoot(t, "binds a port below 1024 and drops to nobody")
	python := nobodyPython(t, "it runs http.server")
	if !strings.Contains(readmeText(t), pythonRecipe) {
		t.Fatalf("README.md does not hold the recipe as tested:\n%s", pythonRecipe)
	}
	dir := publicDir(t)
	writeMode(t, filepath.Join(dir, "index.txt"), "served\n", 0o644)
	addr := fmt.Sprintf("127.0.0.1:%d", freePrivilegedPort(t))
	cmd := exec.Command(binary, "exec", "--listen", "http=tcp:"+addr, "--user", "nobody", "--", python, "-c", pythonRecipe)
	cmd.Dir = dir
	var stderr testutil.LogBuffer // read while the copy goroutine may still write
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	testutil.Must(t, cmd.Start())
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	code, body, err := getWhenUp("http://"+addr+"/index.txt", cmdTimeout)
	if err != nil {
		t.Fatalf("http.server never answered: %v; stderr:\n%s", err, stderr.String())
	}
	if code != http.StatusOK || body != "served\n" {
		t.Errorf("GET /index.txt: %d %q, want 200 served", code, body)
	}
}

// TestRecipeDevFdOtherUser checks the README's note: a program running as
// another user cannot open /dev/fd/N for a descriptor privsep passed it (the
// kernel re-opens the file with that user's permissions), but can read the
// descriptor itself (cat <&3).
func TestRecipeDevFdOtherUser(t *testing.T) {
	testutil.NeedRoot(t, "drops to nobody")
	_, file := publicFile(t, "secret", "root only\n", 0o600)
	r := privsep(t, nil, "exec", "--open", "3="+file, "--user", "nobody", "--", "cat", "/dev/fd/3")
	if r.code == 0 || !strings.Contains(r.stderr, "Permission denied") {
		t.Errorf("cat /dev/fd/3 as nobody: exit %d, stderr %q; want permission denied", r.code, r.stderr)
	}
	r = privsep(t, nil, "exec", "--open", "3="+file, "--user", "nobody", "--", "sh", "-c", "cat <&3")
	checkCode(t, r, 0)
	checkStdout(t, r, "root only\n")
	// /dev/stdin is /dev/fd/0: the same refusal on the file, but a pipe
	// nobody made is nobody's to open.
	r = privsep(t, nil, "exec", "--open", "3="+file, "--user", "nobody", "--", "sh", "-c", "cat /dev/stdin <&3")
	if r.code == 0 {
		t.Errorf("cat /dev/stdin <&3 as nobody: exit 0, want a refusal")
	}
	r = privsep(t, nil, "exec", "--open", "3="+file, "--user", "nobody", "--", "sh", "-c", "cat <&3 | cat /dev/stdin")
	checkCode(t, r, 0)
	checkStdout(t, r, "root only\n")
}

func readmeText(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
