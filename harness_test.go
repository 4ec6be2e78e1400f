//go:build linux

package main

// The harness of the end-to-end tests. TestMain builds the binary once;
// privsep runs it with exec.Command under a timeout, and the check
// functions compare what it printed and its exit status with what the CLI
// promises. The files a test lays out are its own, in temporary
// directories.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/privsep-go/privsep/internal/testutil"
)

// binary is the privsep binary TestMain built.
var binary string

// cmdTimeout bounds every run of the binary, so that nothing (a FIFO that
// blocks, an opener that never answers) can hang the suite.
const cmdTimeout = 20 * time.Second

// testRoleEnv, when set, makes this test binary play a program a test runs
// (as privsep exec's CMD, say) instead of running tests: the value names
// the role, whose exit status is the binary's. TestMain never runs then.
const testRoleEnv = "PRIVSEP_EXEC_TEST_ROLE"

func init() {
	var role func(args []string) int
	switch os.Getenv(testRoleEnv) {
	case "inherited":
		role = inheritedRole
	case "scope":
		role = scopeRole
	case "loop":
		role = loopRole
	default:
		return
	}
	os.Exit(role(os.Args[1:]))
}

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	goTool, err := findGo()
	if err != nil {
		fmt.Fprintln(os.Stderr, "privsep_test:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "privsep-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "privsep_test:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Traversable by everyone, so that the binary can run as nobody.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "privsep_test:", err)
		return 1
	}
	binary = filepath.Join(dir, "privsep")
	build := exec.Command(goTool, "build", "-o", binary, ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "privsep_test: go build: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// findGo finds the go command: on $PATH, else in the GOROOT the tests were
// built with.
func findGo() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	candidates := []string{}
	if r := os.Getenv("GOROOT"); r != "" {
		candidates = append(candidates, filepath.Join(r, "bin", "go"))
	}
	//lint:ignore SA1019 the fallback when go is not on $PATH; GOROOT is tried first.
	candidates = append(candidates, filepath.Join(runtime.GOROOT(), "bin", "go"))
	for _, p := range candidates {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", errors.New("cannot find the go command on $PATH or in GOROOT")
}

// result is what one run of the binary produced.
type result struct {
	stdout  string
	stderr  string
	code    int
	elapsed time.Duration
}

// privsep runs the binary with args. setup, if not nil, adjusts the command
// (Dir, ExtraFiles, credentials, stdout) before it starts.
func privsep(t *testing.T, setup func(*exec.Cmd), args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 2 * time.Second
	if setup != nil {
		setup(cmd)
	}
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	if ctx.Err() != nil {
		t.Fatalf("privsep %q: still running after %v (killed); stderr so far: %q", args, cmdTimeout, r.stderr)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	default:
		t.Fatalf("privsep %q: %v; stderr: %q", args, err, r.stderr)
	}
	return r
}

// inDir returns a setup function that runs the command in dir.
func inDir(dir string) func(*exec.Cmd) {
	return func(c *exec.Cmd) { c.Dir = dir }
}

func checkCode(t *testing.T, r result, want int) {
	t.Helper()
	if r.code != want {
		t.Errorf("exit status: got %d, want %d (stderr: %q)", r.code, want, r.stderr)
	}
}

func checkStdout(t *testing.T, r result, want string) {
	t.Helper()
	if r.stdout != want {
		if len(r.stdout) > 200 || len(want) > 200 {
			t.Errorf("stdout: got %d bytes, want %d bytes (first difference at byte %d)", len(r.stdout), len(want), firstDiff(r.stdout, want))
			return
		}
		t.Errorf("stdout: got %q, want %q", r.stdout, want)
	}
}

// checkHelp checks a run that asked for help: status 0, stdout starting
// with usage, nothing on stderr.
func checkHelp(t *testing.T, r result, usage string) {
	t.Helper()
	checkCode(t, r, 0)
	if !strings.HasPrefix(r.stdout, usage) {
		t.Errorf("stdout: got %q, want the usage, %q first", r.stdout, usage)
	}
	checkStderrLines(t, r)
}

func firstDiff(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// checkStderrLines checks that stderr is exactly len(prefixes) complete
// lines, the i-th starting with prefixes[i]. No prefixes means empty.
func checkStderrLines(t *testing.T, r result, prefixes ...string) {
	t.Helper()
	if len(prefixes) == 0 {
		if r.stderr != "" {
			t.Errorf("stderr: got %q, want it empty", r.stderr)
		}
		return
	}
	lines := strings.SplitAfter(r.stderr, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) != len(prefixes) {
		t.Errorf("stderr: got %d lines %q, want %d lines starting %q", len(lines), r.stderr, len(prefixes), prefixes)
		return
	}
	for i, l := range lines {
		if !strings.HasSuffix(l, "\n") {
			t.Errorf("stderr line %d: got %q, want it ended by a newline", i+1, l)
		}
		if !strings.HasPrefix(l, prefixes[i]) {
			t.Errorf("stderr line %d: got %q, want it to start with %q", i+1, l, prefixes[i])
		}
	}
}

func checkStderrContains(t *testing.T, r result, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr: got %q, want it to contain %q", r.stderr, s)
		}
	}
}

func checkNotPrinted(t *testing.T, r result, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(r.stdout, s) {
			t.Errorf("stdout: got %q, which contains %q; want it never printed", r.stdout, s)
		}
	}
}

func writeFile(t testing.TB, path string, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatalf("mkfifo %s: %v", path, err)
	}
}

// randomBytes returns n reproducible pseudo-random bytes (NULs included).
func randomBytes(n int, seed uint64) string {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return string(b)
}

// writeMode writes a file with the given mode (whatever the umask).
func writeMode(t testing.TB, path, data string, mode os.FileMode) {
	t.Helper()
	writeFile(t, path, data)
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// setups combines setup functions for privsep().
func setups(fs ...func(*exec.Cmd)) func(*exec.Cmd) {
	return func(c *exec.Cmd) {
		for _, f := range fs {
			f(c)
		}
	}
}

// withEnv adds environment variables to the command's (the test's) own.
func withEnv(kv ...string) func(*exec.Cmd) {
	return func(c *exec.Cmd) {
		if c.Env == nil {
			c.Env = os.Environ()
		}
		c.Env = append(c.Env, kv...)
	}
}

// publicDir is a fresh directory that any user can reach, as they can the
// privsep binary: for a test that runs privsep, or its command, as another
// user.
func publicDir(t testing.TB) string {
	return testutil.PublicDir(t, "privsep-exec-test-", filepath.Dir(binary))
}

// publicFile writes data, of the given mode, to name in a fresh publicDir
// and returns the directory and the file's path.
func publicFile(t testing.TB, name, data string, mode os.FileMode) (dir, file string) {
	t.Helper()
	dir = publicDir(t)
	file = filepath.Join(dir, name)
	writeMode(t, file, data, mode)
	return dir, file
}

// The secret that symlinks and ".." try to reach; it must never be printed.
const secret = "TOPSECRET-d0a1b2c3\n"

// fixture is a tree the cat tests share (read-only once built):
//
//	root/tree/          the tree most rules allow
//	root/tree/a.txt, b.bin (binary), empty, sub/c.txt, fifo
//	root/tree/link-in      -> a.txt          (relative, inside)
//	root/tree/link-in-dir  -> sub            (relative, inside)
//	root/tree/link-abs     -> root/outside/secret (absolute, outside)
//	root/tree/link-rel     -> ../outside/secret   (relative, outside)
//	root/tree/link-outdir  -> ../outside          (directory outside)
//	root/outside/secret
//	root/www/index, root/wwwx/a
type fixture struct {
	root, tree, outside string
	a, bin, c           string // contents of a.txt, b.bin, sub/c.txt
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	root := t.TempDir()
	f := &fixture{
		root:    root,
		tree:    filepath.Join(root, "tree"),
		outside: filepath.Join(root, "outside"),
		a:       "alpha\n",
		bin:     "\x00\x01\x02binary\x00\xff\xfe\r\n\x00",
		c:       "gamma\n",
	}
	writeFile(t, filepath.Join(f.tree, "a.txt"), f.a)
	writeFile(t, filepath.Join(f.tree, "b.bin"), f.bin)
	writeFile(t, filepath.Join(f.tree, "empty"), "")
	writeFile(t, filepath.Join(f.tree, "sub", "c.txt"), f.c)
	writeFile(t, filepath.Join(f.outside, "secret"), secret)
	writeFile(t, filepath.Join(root, "www", "index"), "www\n")
	writeFile(t, filepath.Join(root, "wwwx", "a"), "wwwx "+secret)
	symlink(t, "a.txt", filepath.Join(f.tree, "link-in"))
	symlink(t, "sub", filepath.Join(f.tree, "link-in-dir"))
	symlink(t, filepath.Join(f.outside, "secret"), filepath.Join(f.tree, "link-abs"))
	symlink(t, "../outside/secret", filepath.Join(f.tree, "link-rel"))
	symlink(t, "../outside", filepath.Join(f.tree, "link-outdir"))
	mkfifo(t, filepath.Join(f.tree, "fifo"))
	return f
}

func (f *fixture) t(rel string) string { return filepath.Join(f.tree, rel) }

// catCase is one run of "privsep cat".
type catCase struct {
	name   string
	args   []string // after "cat"
	dir    string   // working directory; "" for the test's
	stdout string
	// stderr lines, by prefix, in order; none means stderr must be empty.
	stderr []string
	// substrings stderr must also contain.
	contains []string
	code     int
}

func runCatCases(t *testing.T, cases []catCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var setup func(*exec.Cmd)
			if tc.dir != "" {
				setup = inDir(tc.dir)
			}
			r := privsep(t, setup, append([]string{"cat"}, tc.args...)...)
			checkCode(t, r, tc.code)
			checkStdout(t, r, tc.stdout)
			checkStderrLines(t, r, tc.stderr...)
			checkStderrContains(t, r, tc.contains...)
			checkNotPrinted(t, r, secret)
		})
	}
}
