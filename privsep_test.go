//go:build linux

package main

// End-to-end tests of privsep cat, and of what every subcommand shares
// with it: usage errors, help, log levels, inherited descriptors, the
// opener's death. The harness is in harness_test.go.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/privsep-go/privsep/internal/testutil"
)

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
