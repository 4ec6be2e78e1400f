//go:build linux

package main

// End-to-end tests of the privsep binary. TestMain builds the binary once;
// every test runs it with exec.Command under a timeout, in temporary
// directory trees of its own, and checks stdout, stderr and the exit status
// wherever the CLI promises them.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
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

func TestCatPrints(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	big := randomBytes(3<<20+12345, 1)
	bigPath := filepath.Join(f.root, "big.bin")
	writeFile(t, bigPath, big)

	runCatCases(t, []catCase{
		{name: "text file, default policy", args: []string{f.t("a.txt")}, stdout: f.a},
		{name: "binary file with NULs", args: []string{f.t("b.bin")}, stdout: f.bin},
		{name: "empty file", args: []string{f.t("empty")}, stdout: ""},
		{name: "file of a few MB", args: []string{bigPath}, stdout: big},
		{name: "several files in order", args: []string{f.t("sub/c.txt"), f.t("b.bin"), f.t("a.txt"), bigPath, f.t("a.txt")},
			stdout: f.c + f.bin + f.a + big + f.a},
		{name: "tree rule", args: []string{"--allow", f.tree + "/", f.t("a.txt"), f.t("sub/c.txt")}, stdout: f.a + f.c},
		{name: "exact rules", args: []string{"--allow", f.t("a.txt"), "--allow", "r:" + f.t("sub/c.txt"), f.t("sub/c.txt"), f.t("a.txt")},
			stdout: f.c + f.a},
		{name: "root tree rule", args: []string{"--allow", "/", f.t("a.txt")}, stdout: f.a},
		{name: "relative paths, default policy", dir: f.root, args: []string{"tree/a.txt", "tree/sub/c.txt"}, stdout: f.a + f.c},
		{name: "relative paths, absolute rule", dir: f.tree, args: []string{"--allow", f.tree + "/", "b.bin", "sub/c.txt"}, stdout: f.bin + f.c},
		{name: "symlink inside the tree to a file inside", args: []string{"--allow", f.tree + "/", f.t("link-in")}, stdout: f.a},
		{name: "symlinked directory inside the tree", args: []string{"--allow", f.tree + "/", f.t("link-in-dir/c.txt")}, stdout: f.c},
		{name: "prefix confusion: www/ rule, www file", args: []string{"--allow", filepath.Join(f.root, "www") + "/", filepath.Join(f.root, "www", "index")}, stdout: "www\n"},
	})
}

// TestDefaultPolicyIsExactlyTheFiles reads the policy the opener reports at
// info level: one exact rule per FILE argument, nothing else.
func TestDefaultPolicyIsExactlyTheFiles(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := privsep(t, nil, "cat", "--log-level", "info", f.t("a.txt"), f.t("sub/c.txt"), f.t("a.txt"))
	checkCode(t, r, 0)
	checkStdout(t, r, f.a+f.c+f.a)
	want := fmt.Sprintf("rules=[r:%s, r:%s]", f.t("a.txt"), f.t("sub/c.txt"))
	checkStderrContains(t, r, "ready", want)

	// Relative FILEs become absolute rules, against the working directory.
	r = privsep(t, inDir(f.tree), "cat", "--log-level", "info", "a.txt")
	checkCode(t, r, 0)
	checkStdout(t, r, f.a)
	checkStderrContains(t, r, fmt.Sprintf("rules=[r:%s]", f.t("a.txt")))
}

func TestCatFailures(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tree := f.tree + "/"
	runCatCases(t, []catCase{
		{name: "denied file, others still printed",
			args:   []string{"--allow", tree, f.t("a.txt"), filepath.Join(f.outside, "secret"), f.t("sub/c.txt")},
			stdout: f.a + f.c,
			stderr: []string{"privsep: open " + filepath.Join(f.outside, "secret") + ": denied by policy"},
			code:   1},
		{name: "denied relative file is named as given",
			dir:    f.root,
			args:   []string{"--allow", tree, "outside/secret", "tree/a.txt"},
			stdout: f.a,
			stderr: []string{"privsep: open outside/secret: denied by policy"},
			code:   1},
		{name: "exact rule does not cover a sibling",
			args:   []string{"--allow", f.t("a.txt"), f.t("b.bin"), f.t("a.txt")},
			stdout: f.a,
			stderr: []string{"privsep: open " + f.t("b.bin") + ": denied by policy"},
			code:   1},
		{name: "prefix confusion: www/ does not allow wwwx/a",
			args:   []string{"--allow", filepath.Join(f.root, "www") + "/", filepath.Join(f.root, "wwwx", "a"), filepath.Join(f.root, "www", "index")},
			stdout: "www\n",
			stderr: []string{"privsep: open " + filepath.Join(f.root, "wwwx", "a") + ": denied by policy"},
			code:   1},
		{name: "missing file, default policy",
			args:   []string{f.t("nope")},
			stderr: []string{"privsep: open " + f.t("nope") + ": no such file or directory\n"},
			code:   1},
		{name: "missing file in a tree, others printed",
			args:   []string{"--allow", tree, f.t("a.txt"), f.t("sub/nope"), f.t("b.bin")},
			stdout: f.a + f.bin,
			stderr: []string{"privsep: open " + f.t("sub/nope") + ": no such file or directory\n"},
			code:   1},
		{name: "two failures reported in order",
			args:   []string{"--allow", tree, f.t("nope"), f.t("a.txt"), filepath.Join(f.outside, "secret")},
			stdout: f.a,
			stderr: []string{"privsep: open " + f.t("nope") + ": no such file or directory\n", "privsep: open " + filepath.Join(f.outside, "secret") + ": denied by policy"},
			code:   1},
		{name: "directory by a tree rule",
			args:   []string{"--allow", tree, f.tree},
			stderr: []string{"privsep: read " + f.tree + ": is a directory\n"},
			code:   1},
		{name: "subdirectory by a tree rule",
			args:   []string{"--allow", tree, f.t("sub"), f.t("a.txt")},
			stdout: f.a,
			stderr: []string{"privsep: read " + f.t("sub") + ": is a directory\n"},
			code:   1},
	})
}

// TestCatContainment: a symlink or a ".." that would leave a rule's
// directory is refused, and the file is named as given; the secret outside
// is never printed.
func TestCatContainment(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tree := f.tree + "/"
	runCatCases(t, []catCase{
		{name: "absolute symlink out of the tree",
			args:     []string{"--allow", tree, f.t("link-abs")},
			stderr:   []string{"privsep: open " + f.t("link-abs") + ": "},
			contains: []string{"would leave its rule's directory"},
			code:     1},
		{name: "relative ../ symlink out of the tree",
			args:     []string{"--allow", tree, f.t("link-rel"), f.t("a.txt")},
			stdout:   f.a,
			stderr:   []string{"privsep: open " + f.t("link-rel") + ": "},
			contains: []string{"would leave its rule's directory"},
			code:     1},
		{name: "symlinked directory out of the tree",
			args:     []string{"--allow", tree, f.t("link-outdir/secret")},
			stderr:   []string{"privsep: open " + f.t("link-outdir/secret") + ": "},
			contains: []string{"would leave its rule's directory"},
			code:     1},
		{name: "exact rule on a symlink inside its directory",
			args:     []string{"--allow", f.t("link-in"), f.t("link-in")},
			stderr:   []string{"privsep: open " + f.t("link-in") + ": "},
			contains: []string{"would leave its rule's directory"},
			code:     1},
		{name: "exact rule on a symlink out",
			args:     []string{"--allow", f.t("link-abs"), f.t("link-abs")},
			stderr:   []string{"privsep: open " + f.t("link-abs") + ": "},
			contains: []string{"would leave its rule's directory"},
			code:     1},
		{name: "default policy on a symlink",
			args:     []string{f.t("link-rel")},
			stderr:   []string{"privsep: open " + f.t("link-rel") + ": "},
			contains: []string{"would leave its rule's directory"},
			code:     1},
		{name: "dotdot inside the tree",
			args:   []string{"--allow", tree, f.t("sub") + "/../a.txt"},
			stderr: []string{"privsep: open " + f.t("sub") + "/../a.txt: bad request: path is not clean"},
			code:   1},
		{name: "dotdot out of the tree",
			args:   []string{"--allow", tree, f.tree + "/../outside/secret", f.t("a.txt")},
			stdout: f.a,
			stderr: []string{"privsep: open " + f.tree + "/../outside/secret: bad request: path is not clean"},
			code:   1},
		{name: "dotdot, default policy",
			args:   []string{f.t("sub") + "/../../outside/secret"},
			stderr: []string{"privsep: open " + f.t("sub") + "/../../outside/secret: bad request: path is not clean"},
			code:   1},
		{name: "relative dotdot",
			dir:    f.tree,
			args:   []string{"--allow", tree, "../outside/secret"},
			stderr: []string{"privsep: open ../outside/secret: bad request: path is not clean"},
			code:   1},
	})
}

// TestSpecialFiles: nothing but a regular file or directory is handed out,
// and none of them can block the command.
func TestSpecialFiles(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	sock := filepath.Join(f.tree, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	const notRegular = "refused: not a regular file or directory\n"
	for _, tc := range []struct {
		name   string
		args   []string
		file   string
		stdout string
		want   string // the reason after "privsep: open FILE: "
	}{
		{name: "FIFO in the tree", args: []string{"--allow", f.tree + "/"}, file: f.t("fifo"), want: notRegular},
		{name: "FIFO by default policy", file: f.t("fifo"), want: notRegular},
		{name: "FIFO by an exact rule", args: []string{"--allow", f.t("fifo")}, file: f.t("fifo"), want: notRegular},
		{name: "FIFO with no rule", args: []string{"--allow", f.t("a.txt")}, file: f.t("fifo"), want: "denied by policy"},
		{name: "FIFO then a file", args: []string{"--allow", f.tree + "/"}, file: f.t("fifo"), want: notRegular, stdout: f.a},
		{name: "unix socket in the tree", args: []string{"--allow", f.tree + "/"}, file: sock, want: notRegular},
		{name: "unix socket by default policy", file: sock, want: notRegular},
		{name: "/dev/null by an exact rule", args: []string{"--allow", "/dev/null"}, file: "/dev/null", want: notRegular},
		{name: "/dev/zero by a tree rule", args: []string{"--allow", "/dev/"}, file: "/dev/zero", want: notRegular},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append(append([]string{"cat"}, tc.args...), tc.file)
			if tc.stdout != "" {
				args = append(args, f.t("a.txt"))
			}
			r := privsep(t, nil, args...)
			checkCode(t, r, 1)
			checkStdout(t, r, tc.stdout)
			checkStderrLines(t, r, "privsep: open "+tc.file+": "+tc.want)
			if r.elapsed > cmdTimeout/4 {
				t.Errorf("took %v, want well under %v", r.elapsed, cmdTimeout)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want []string // substrings of stderr
	}{
		{name: "no command", args: nil, want: []string{"Usage:", "privsep cat"}},
		{name: "unknown command", args: []string{"frob"}, want: []string{`unknown command "frob"`}},
		{name: "help for an unknown command", args: []string{"help", "frob"}, want: []string{`unknown command "frob"`}},
		{name: "cat without FILE", args: []string{"cat"}, want: []string{"no FILE given"}},
		{name: "cat with rules but no FILE", args: []string{"cat", "--allow", "/etc/"}, want: []string{"no FILE given"}},
		{name: "relative rule with ..", args: []string{"cat", "--allow", "../etc/hostname", "/etc/hostname"}, want: []string{`../etc/hostname"`, "not clean"}},
		{name: "unclean rule", args: []string{"cat", "--allow", "/a/../b", "/b"}, want: []string{`"/a/../b"`, "not clean"}},
		{name: "unclean tree rule", args: []string{"cat", "--allow", "/a//b/", "/a/b/c"}, want: []string{"not clean"}},
		{name: "empty rule", args: []string{"cat", "--allow", "", "/b"}, want: []string{"-allow"}},
		{name: "unknown mode", args: []string{"cat", "--allow", "x:/tmp/", "/tmp/x"}, want: []string{"mode"}},
		{name: "unknown log level", args: []string{"cat", "--log-level", "loud", "/etc/hostname"}, want: []string{`unknown log level "loud"`}},
		{name: "unknown flag", args: []string{"cat", "--frob", "/etc/hostname"}, want: []string{"frob"}},
		{name: "missing flag value", args: []string{"cat", "--allow"}, want: []string{"allow"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := privsep(t, nil, tc.args...)
			checkCode(t, r, 2)
			checkStdout(t, r, "")
			checkStderrContains(t, r, tc.want...)
		})
	}
}

// TestDuplicateRule: the same rule twice on the command line is the command
// line's fault, so a usage error, reported once with one "privsep:" prefix.
func TestDuplicateRule(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := privsep(t, nil, "cat", "--allow", f.t("a.txt"), "--allow", "r:"+f.t("a.txt"), f.t("a.txt"))
	checkStdout(t, r, "")
	checkStderrContains(t, r, "duplicates")
	if strings.Contains(r.stderr, "privsep: privsep:") {
		t.Errorf("stderr: got %q, want a single \"privsep:\" prefix", r.stderr)
	}
	checkCode(t, r, 2)
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string // a line of the usage that must be on stdout
	}{
		{[]string{"--help"}, "privsep cat [--allow RULE]"},
		{[]string{"-h"}, "privsep cat [--allow RULE]"},
		{[]string{"help"}, "privsep cat [--allow RULE]"},
		{[]string{"help", "cat"}, "Usage: privsep cat [--allow RULE]"},
		{[]string{"cat", "--help"}, "Usage: privsep cat [--allow RULE]"},
		{[]string{"cat", "-h"}, "Usage: privsep cat [--allow RULE]"},
		{[]string{"cat", "--allow", "/etc/", "--help", "/etc/hostname"}, "Usage: privsep cat [--allow RULE]"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			r := privsep(t, nil, tc.args...)
			checkCode(t, r, 0)
			if !strings.Contains(r.stdout, tc.want) || !strings.Contains(r.stdout, "--allow") {
				t.Errorf("stdout: got %q, want the usage, with %q", r.stdout, tc.want)
			}
			if n := strings.Count(r.stdout, "Usage:"); n != 1 {
				t.Errorf("stdout: got the usage %d times, want once", n)
			}
			checkStderrLines(t, r)
		})
	}
}

func TestLogLevel(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	denied := filepath.Join(f.outside, "secret")
	prefix := "privsep: open " + denied + ": denied by policy"

	t.Run("default level logs nothing", func(t *testing.T) {
		t.Parallel()
		r := privsep(t, nil, "cat", "--allow", f.tree+"/", denied)
		checkCode(t, r, 1)
		checkStdout(t, r, "")
		checkStderrLines(t, r, prefix)
	})
	for _, level := range []string{"warn", "WARN", "info", "debug"} {
		t.Run("--log-level "+level, func(t *testing.T) {
			t.Parallel()
			r := privsep(t, nil, "cat", "--log-level", level, "--allow", f.tree+"/", denied, f.t("a.txt"))
			checkCode(t, r, 1)
			checkStdout(t, r, f.a)
			var audit, report int
			for _, l := range strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n") {
				switch {
				case strings.HasPrefix(l, prefix):
					report++
				case strings.Contains(l, "denied") && strings.Contains(l, denied):
					audit++
					if !strings.Contains(l, "WARN") {
						t.Errorf("audit line: got %q, want it at WARN", l)
					}
				}
			}
			if report != 1 || audit != 1 {
				t.Errorf("stderr: got %d report lines and %d audit lines in %q, want 1 and 1", report, audit, r.stderr)
			}
		})
	}
	t.Run("--log-level off", func(t *testing.T) {
		t.Parallel()
		r := privsep(t, nil, "cat", "--log-level", "off", "--allow", f.tree+"/", denied)
		checkCode(t, r, 1)
		checkStderrLines(t, r, prefix)
	})
	t.Run("--log-level debug logs grants", func(t *testing.T) {
		t.Parallel()
		r := privsep(t, nil, "cat", "--log-level", "debug", f.t("a.txt"))
		checkCode(t, r, 0)
		checkStdout(t, r, f.a)
		if !regexp.MustCompile(`(?m)granted.*` + regexp.QuoteMeta(f.t("a.txt"))).MatchString(r.stderr) {
			t.Errorf("stderr: got %q, want a debug line granting %s", r.stderr, f.t("a.txt"))
		}
	})
}

// TestAsNobody runs the binary as an unprivileged user on a root-only file:
// the opener has the caller's privileges, no more, so the kernel refuses.
func TestAsNobody(t *testing.T) {
	t.Parallel()
	testutil.NeedRoot(t, "to run the binary as nobody (uid 65534)")
	dir := testutil.PublicDir(t, "privsep-nobody-", filepath.Dir(binary))
	private := filepath.Join(dir, "private")
	public := filepath.Join(dir, "public")
	if err := os.WriteFile(private, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(public, []byte("public\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	asNobody := func(c *exec.Cmd) {
		c.Dir = dir
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	t.Run("default policy", func(t *testing.T) {
		t.Parallel()
		r := privsep(t, asNobody, "cat", private, public)
		checkCode(t, r, 1)
		checkStdout(t, r, "public\n")
		checkStderrLines(t, r, "privsep: open "+private+": permission denied\n")
		checkNotPrinted(t, r, secret)
	})
	t.Run("tree rule", func(t *testing.T) {
		t.Parallel()
		r := privsep(t, asNobody, "cat", "--allow", dir+"/", "private")
		checkCode(t, r, 1)
		checkStdout(t, r, "")
		checkStderrLines(t, r, "privsep: open private: permission denied\n")
	})
}

// TestInheritedDescriptors runs the binary with extra descriptors open: the
// command still works, and the opener closes what leaked across exec.
func TestInheritedDescriptors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var extra []*os.File
	for _, name := range []string{"a.txt", "b.bin"} {
		fh, err := os.Open(f.t(name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fh.Close() })
		extra = append(extra, fh) // descriptors 3 and 4 in privsep
	}
	withExtra := func(c *exec.Cmd) { c.ExtraFiles = extra }

	r := privsep(t, withExtra, "cat", f.t("sub/c.txt"))
	checkCode(t, r, 0)
	checkStdout(t, r, f.c)
	checkStderrLines(t, r)

	// At info level the opener says which inherited descriptors it closed.
	// Descriptor 3 is the opener's socket; 4 is privsep's inherited 4, which
	// os/exec passes on because it is not close-on-exec.
	r = privsep(t, withExtra, "cat", "--log-level", "info", f.t("sub/c.txt"))
	checkCode(t, r, 0)
	checkStdout(t, r, f.c)
	m := regexp.MustCompile(`closed descriptors inherited across exec.*fds=\[([0-9, ]*)\]`).FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("stderr: got %q, want a line about closing inherited descriptors", r.stderr)
	}
	found := false
	for _, s := range strings.Split(m[1], ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n == 4 {
			found = true
		}
	}
	if !found {
		t.Errorf("closed descriptors: got [%s], want 4 among them", m[1])
	}
}

// TestSuccessIsQuiet: a run that prints everything exits 0 with nothing on
// stderr; in particular the opener's exit is clean.
func TestSuccessIsQuiet(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := privsep(t, nil, "cat", "--allow", f.tree+"/", f.t("a.txt"), f.t("link-in"), f.t("empty"))
	checkCode(t, r, 0)
	checkStdout(t, r, f.a+f.a)
	checkStderrLines(t, r)
}

// TestOpenerDeath kills the opener while privsep is blocked writing the
// first file to a full pipe: the first file is still printed whole, the
// next one fails with an error that names the opener, and the exit status
// is 1.
func TestOpenerDeath(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	big := randomBytes(1<<20, 2)
	bigPath := filepath.Join(f.root, "big")
	writeFile(t, bigPath, big)

	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "cat", bigPath, f.t("a.txt"))
	cmd.WaitDelay = 2 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	br := bufio.NewReader(startReading(t, cmd))
	// Once output flows, the opener is up and has answered the first open;
	// privsep then blocks on the pipe, since nobody reads it.
	first, err := br.Peek(1)
	if err != nil || len(first) != 1 {
		t.Fatalf("reading privsep's output: %v", err)
	}
	opener, err := childOf(cmd.Process.Pid, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(opener, syscall.SIGKILL); err != nil {
		t.Fatalf("killing the opener (pid %d): %v", opener, err)
	}
	for deadline := time.Now().Add(5 * time.Second); !gone(opener); {
		if time.Now().After(deadline) {
			t.Fatalf("opener pid %d still alive 5s after SIGKILL", opener)
		}
		time.Sleep(5 * time.Millisecond)
	}
	got, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("reading privsep's output: %v", err)
	}
	werr := cmd.Wait()
	if ctx.Err() != nil {
		t.Fatalf("privsep still running after %v (killed); stderr: %q", cmdTimeout, stderr.String())
	}
	r := result{stdout: string(got), stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(werr, &ee) && ee.Exited() {
		r.code = ee.ExitCode()
	} else if werr != nil {
		t.Fatalf("privsep: %v", werr)
	}
	checkCode(t, r, 1)
	checkStdout(t, r, big)
	checkStderrLines(t, r, "privsep: open "+f.t("a.txt")+": opener died")
	checkStderrContains(t, r, "opener")
	if strings.Contains(r.stderr, "privsep: privsep:") || strings.Contains(r.stderr, ": privsep: ") {
		t.Errorf("stderr: got %q, want one \"privsep:\" prefix per line", r.stderr)
	}
}

// TestWriteErrorNamesOutput: when standard output cannot be written, the
// message must not blame the input FILE.
func TestWriteErrorNamesOutput(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	t.Cleanup(func() { full.Close() })
	r := privsep(t, func(c *exec.Cmd) { c.Stdout = full }, "cat", f.t("a.txt"))
	checkCode(t, r, 1)
	checkStderrContains(t, r, "no space left on device")
	if strings.Contains(r.stderr, "write "+f.t("a.txt")) {
		t.Errorf("stderr: got %q, which says the input file was being written; want the write to standard output blamed", r.stderr)
	}
}
