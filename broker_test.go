//go:build linux

package main

// End-to-end tests of "privsep exec --broker" through the built binary:
// an unmodified program, run as nobody, opens a root-only file the policy
// allows through the opener (seccomp user notification), and everything
// else as itself.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/privsep-go/privsep/internal/testutil"

	"github.com/privsep-go/privsep/parent"
)

const brokerPython = "/usr/bin/python3"

// brokerFixture is a public directory holding a 0700 directory "secret"
// with two root-only files: key, which the tests allow, and other, which
// they do not.
type brokerFixture struct {
	dir, secret, key, other string
}

func newBrokerFixture(t testing.TB) brokerFixture {
	t.Helper()
	testutil.NeedRoot(t, "the broker runs the command as nobody, and the opener must read root-only files")
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("the open broker exists on amd64 and arm64 only")
	}
	dir := publicDir(t)
	f := brokerFixture{dir: dir, secret: filepath.Join(dir, "secret")}
	if err := os.Mkdir(f.secret, 0o700); err != nil {
		t.Fatal(err)
	}
	f.key, f.other = filepath.Join(f.secret, "key"), filepath.Join(f.secret, "other")
	writeMode(t, f.key, "the-key\n", 0o600)
	writeMode(t, f.other, "the-other\n", 0o600)
	return f
}

func needPython(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(brokerPython); err != nil {
		t.Skipf("needs %s: %v", brokerPython, err)
	}
}

func brokerArgs(rules []string, cmd ...string) []string {
	args := []string{"exec", "--broker", "--user", "nobody"}
	for _, r := range rules {
		args = append(args, "--allow", r)
	}
	return append(append(args, "--"), cmd...)
}

// TestBrokerCatRootOnlyFile: an unmodified cat as nobody reads the
// root-only file the policy allows; the one it does not allow fails with
// cat's own EACCES; exit statuses pass through.
func TestBrokerCatRootOnlyFile(t *testing.T) {
	f := newBrokerFixture(t)
	rules := []string{"r:" + f.key}

	r := privsep(t, nil, brokerArgs(rules, "cat", f.key)...)
	checkCode(t, r, 0)
	checkStdout(t, r, "the-key\n")

	r = privsep(t, nil, brokerArgs(rules, "cat", f.other)...)
	checkCode(t, r, 1)
	checkNotPrinted(t, r, "the-other")
	checkStderrContains(t, r, "Permission denied")

	// The filter is inherited: the shell's child cat is served too, and
	// the shell's own status comes back.
	r = privsep(t, nil, brokerArgs(rules, "sh", "-c", `cat "$1"; exit 7`, "sh", f.key)...)
	checkCode(t, r, 7)
	checkStdout(t, r, "the-key\n")

	// A missing file the policy allows is ENOENT, as for an Open
	// request, not nobody's EACCES from the 0700 directory.
	r = privsep(t, nil, brokerArgs([]string{"r:" + f.secret + "/"}, "cat", filepath.Join(f.secret, "missing"))...)
	checkCode(t, r, 1)
	checkStderrContains(t, r, "No such file or directory")

	// A program killed by a signal is reported as such by the shell
	// that ran privsep: the status is the program's, not privsep's.
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	err := exec.CommandContext(ctx, binary, brokerArgs(rules, "sh", "-c", "kill -9 $$")...).Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("sh killing itself: got %v, want killed by SIGKILL", err)
	}
}

// TestBrokerNeedsUser: --broker without --user is a usage error.
func TestBrokerNeedsUser(t *testing.T) {
	r := privsep(t, nil, "exec", "--broker", "--allow", "r:/etc/hostname", "--", "true")
	checkCode(t, r, 125)
	checkStderrContains(t, r, "--broker needs --user")
}

// TestBrokerRelativePaths: paths relative to the cwd (inside the 0700
// directory) are served, as the name the kernel gives the cwd joined with
// the path, and judged like an absolute one.
func TestBrokerRelativePaths(t *testing.T) {
	f := newBrokerFixture(t)
	if err := os.Mkdir(filepath.Join(f.secret, "tree"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeMode(t, filepath.Join(f.secret, "tree", "file"), "in-tree\n", 0o600)
	rules := []string{"r:" + f.key, "r:" + filepath.Join(f.secret, "tree") + "/"}
	r := privsep(t, inDir(f.secret), brokerArgs(rules, "cat", "key", "tree/file", "./tree/../key")...)
	// "./tree/../key" is not a clean path: the policy refuses it, so it
	// goes ahead as nobody and fails.
	checkCode(t, r, 1)
	checkStdout(t, r, "the-key\nin-tree\n")
	checkStderrContains(t, r, "Permission denied")
}

// TestBrokerSymlinkEscapeRefused performs the attack of a program (or a
// local user who can write in an allowed tree) that plants symlinks in the
// tree pointing outside it: the opener's containment refuses them and the
// call goes ahead as nobody, which cannot read the target.
func TestBrokerSymlinkEscapeRefused(t *testing.T) {
	f := newBrokerFixture(t)
	tree := filepath.Join(f.secret, "tree")
	if err := os.Mkdir(tree, 0o700); err != nil {
		t.Fatal(err)
	}
	symlink(t, "../other", filepath.Join(tree, "esc"))
	symlink(t, f.other, filepath.Join(tree, "abs"))
	for _, name := range []string{"esc", "abs"} {
		r := privsep(t, nil, brokerArgs([]string{"r:" + tree + "/"}, "cat", filepath.Join(tree, name))...)
		checkCode(t, r, 1)
		checkNotPrinted(t, r, "the-other")
		checkStderrContains(t, r, "Permission denied")
	}
}

// TestBrokerWriteToReadOnlyRuleFails performs a write, append and truncate
// of a file whose rule only allows reading: the policy refuses them, the
// calls go ahead as nobody and fail, and the file is unchanged.
func TestBrokerWriteToReadOnlyRuleFails(t *testing.T) {
	f := newBrokerFixture(t)
	rules := []string{"r:" + f.key}
	for _, script := range []string{`echo x > "$1"`, `echo x >> "$1"`, `: 1<> "$1"`} {
		r := privsep(t, nil, brokerArgs(rules, "sh", "-c", script, "sh", f.key)...)
		if r.code == 0 {
			t.Errorf("%s: exit status 0, want a failure", script)
		}
		checkStderrContains(t, r, "Permission denied")
	}
	if b, err := os.ReadFile(f.key); err != nil || string(b) != "the-key\n" {
		t.Errorf("the read-only rule's file: got %q, %v; want it unchanged", b, err)
	}
}

// brokerThreads is a Python program: 16 threads behind a barrier open the
// key by its absolute path, by a cwd-relative path and relative to a
// directory descriptor, N times each, and check what they read.
const brokerThreads = `
import os, sys, threading
key, n = sys.argv[1], int(sys.argv[2])
d = os.open(os.path.dirname(key), os.O_RDONLY | os.O_DIRECTORY)
b = threading.Barrier(16)
bad = []
def run(i):
    b.wait()
    for j in range(n):
        k = (i + j) % 3
        if k == 0:
            fd = os.open(key, os.O_RDONLY)
        elif k == 1:
            fd = os.open(os.path.basename(key), os.O_RDONLY)
        else:
            fd = os.open(os.path.basename(key), os.O_RDONLY, dir_fd=d)
        data = os.read(fd, 100)
        os.close(fd)
        if data != b"the-key\n":
            bad.append(data)
ts = [threading.Thread(target=run, args=(i,)) for i in range(16)]
for t in ts: t.start()
for t in ts: t.join()
print("uid", os.getuid(), "bad", len(bad))
`

// TestBrokerSixteenThreads: 16 threads of an unmodified Python, as nobody,
// each open the root-only file 200 times, all served (directory included:
// the rule hands out the directory's descriptor with dirs=yes).
func TestBrokerSixteenThreads(t *testing.T) {
	f := newBrokerFixture(t)
	needPython(t)
	rules := []string{"r:" + f.secret + "/ dirs=yes"}
	args := []string{"exec", "--broker", "--user", "nobody", "--policy", writeBrokerPolicy(t, f.dir, rules), "--",
		brokerPython, "-I", "-c", brokerThreads, f.key, "200"}
	r := privsep(t, inDir(f.secret), args...)
	checkCode(t, r, 0)
	checkStdout(t, r, "uid 65534 bad 0\n")
}

// writePolicy writes rules (with options) to a policy file in dir.
func writeBrokerPolicy(t *testing.T, dir string, rules []string) string {
	t.Helper()
	p := filepath.Join(dir, "policy")
	writeMode(t, p, strings.Join(rules, "\n")+"\n", 0o644)
	return p
}

// brokerLoop is a Python program that opens the key N times each time a
// line arrives on stdin, and says so; it ends at end of input.
const brokerLoop = `
import os, sys
key, n = sys.argv[1], int(sys.argv[2])
print("ready", flush=True)
for line in sys.stdin:
    got = 0
    for j in range(n):
        try:
            fd = os.open(key, os.O_RDONLY)
        except OSError as e:
            print("error", e.errno, flush=True)
            break
        if os.read(fd, 100) == b"the-key\n":
            got += 1
        os.close(fd)
    print("read", got, flush=True)
`

// brokerRun is a running privsep exec --broker whose command is brokerLoop.
type brokerRun struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
	n     int // opens a round
}

func startBrokerLoop(t *testing.T, f brokerFixture, n int) *brokerRun {
	t.Helper()
	needPython(t)
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, binary, brokerArgs([]string{"r:" + f.key}, brokerPython, "-I", "-c", brokerLoop, f.key, strconv.Itoa(n))...)
	cmd.Stderr = os.Stderr
	cmd.WaitDelay = 2 * time.Second
	in, err := cmd.StdinPipe()
	testutil.Must(t, err)
	out := startReading(t, cmd)
	b := &brokerRun{cmd: cmd, in: in, lines: make(chan string, 16), n: n}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			b.lines <- sc.Text()
		}
		close(b.lines)
	}()
	t.Cleanup(func() {
		in.Close()
		if cmd.ProcessState == nil {
			_ = cmd.Wait()
		}
	})
	b.expect(t, "ready")
	return b
}

func (b *brokerRun) expect(t *testing.T, want string) {
	t.Helper()
	line, ok := <-b.lines
	if !ok || line != want {
		t.Fatalf("the program said %q (more: %v), want %q", line, ok, want)
	}
}

// round has the program open the key its n times, each served.
func (b *brokerRun) round(t *testing.T) {
	t.Helper()
	fmt.Fprintln(b.in)
	b.expect(t, "read "+strconv.Itoa(b.n))
}

// opener is the pid of the command's one child, the opener.
func (b *brokerRun) opener(t *testing.T) int {
	t.Helper()
	kids := children(b.cmd.Process.Pid)
	if len(kids) != 1 {
		t.Fatalf("the program's children: %v, want one, the opener", kids)
	}
	return kids[0]
}

// TestBrokerManyOpensNoOpenerLeak: 3000 brokered opens leave the opener's
// descriptor count where it was: every descriptor it placed is closed.
func TestBrokerManyOpensNoOpenerLeak(t *testing.T) {
	f := newBrokerFixture(t)
	b := startBrokerLoop(t, f, 1000)
	opener := b.opener(t)
	b.round(t) // the opener's deciding workers are made
	before := openerFDs(t, opener)
	for i := 0; i < 3; i++ {
		b.round(t)
	}
	if after := openerFDs(t, opener); !slices.Equal(after, before) {
		t.Errorf("opener descriptors: %q before 3000 brokered opens, %q after", before, after)
	}
}

// openerFDs lists the opener's descriptors, each as "N -> target", but for
// the cgroup files the Go runtime opens and closes on its own now and then
// (to follow the CPU quota). The opener closes its copy of a placed key
// just after the program has it, so a listing with the key in it is
// taken again, for a while.
func openerFDs(t *testing.T, pid int) []string {
	t.Helper()
	var fds []string
	for i := 0; i < 100; i++ {
		fds = listFDs(t, pid)
		if !slices.ContainsFunc(fds, func(s string) bool { return strings.HasSuffix(s, "/secret/key") }) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fds
}

func listFDs(t *testing.T, pid int) []string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var fds []string
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil || strings.HasPrefix(target, "/sys/fs/cgroup/") {
			continue // closed meanwhile, or the runtime's
		}
		fds = append(fds, e.Name()+" -> "+target)
	}
	return fds
}

// TestBrokerOpenerDeath kills the opener while the program runs, as a
// crash or an OOM kill would: the watcher kills the program (SIGKILL)
// before it sees one failed open, and it never hangs.
func TestBrokerOpenerDeath(t *testing.T) {
	f := newBrokerFixture(t)
	b := startBrokerLoop(t, f, 1)
	opener := b.opener(t)
	b.round(t)
	if err := syscall.Kill(opener, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(b.in)
	if line, ok := <-b.lines; ok {
		t.Fatalf("after the opener died the program said %q, want it killed first", line)
	}
	b.in.Close()
	err := b.cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the program after the opener died: %v, want killed by SIGKILL", err)
	}
}

// TestBrokerWatcherNotAChild: the watcher that kills the program when the
// opener dies is not the program's child, so a shell's wait does not wait
// for it; the program's only child is the opener.
func TestBrokerWatcherNotAChild(t *testing.T) {
	f := newBrokerFixture(t)
	b := startBrokerLoop(t, f, 1)
	b.opener(t) // fails unless the opener is the one child
	r := privsep(t, nil, brokerArgs([]string{"r:" + f.key}, "sh", "-c", `cat "$1" & wait; echo waited`, "sh", f.key)...)
	checkCode(t, r, 0)
	checkStdout(t, r, "the-key\nwaited\n")
}

// loopRole (testRoleEnv "loop") is the loop program of
// BenchmarkBrokeredOpen: it opens and closes FILE N times and prints how
// long that took, in nanoseconds.
func loopRole(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: FILE N")
		return 2
	}
	n, _ := strconv.Atoi(args[1])
	took, err := testutil.OpenLoop(args[0], n)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(took.Nanoseconds())
	return 0
}

// BenchmarkBrokeredOpen measures, in one run, opening and closing one
// allowed root-only file three ways, through the real privsep binary:
//
//	direct    the loop program (this test binary) as root, no filter
//	brokered  the same program under privsep exec --broker --user nobody:
//	          each open goes to the opener, which takes an Open request's
//	          whole path (policy, containment, checks) and places the
//	          descriptor
//	request   an Open request over the opener's socket (package parent)
//
// The loop program times its own loop; ns/open is the figure.
func BenchmarkBrokeredOpen(b *testing.B) {
	f := newBrokerFixture(b)
	key := f.key
	loopBin := testutil.CopySelf(b, filepath.Join(f.dir, "role.test")) // nobody may run it: see testRoleEnv
	loop := func(b *testing.B, argv ...string) {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), testRoleEnv+"=loop")
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("%q: %v", argv, err)
		}
		ns, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		if err != nil {
			b.Fatalf("loop printed %q", out)
		}
		b.ReportMetric(ns/float64(b.N), "ns/open")
	}
	n := func(b *testing.B) string { return strconv.Itoa(b.N) }
	b.Run("direct", func(b *testing.B) { loop(b, loopBin, key, n(b)) })
	b.Run("brokered", func(b *testing.B) {
		loop(b, binary, "exec", "--broker", "--allow", "r:"+key, "--user", "nobody", "--", loopBin, key, n(b))
	})
	b.Run("request", func(b *testing.B) {
		ctx := context.Background()
		o, err := parent.Start(ctx, parent.Config{Rules: []string{"r:" + key}, Executable: binary})
		if err != nil {
			b.Fatal(err)
		}
		defer o.Close()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			fh, err := o.Open(ctx, key, os.O_RDONLY, 0)
			if err != nil {
				b.Fatal(err)
			}
			fh.Close()
		}
		b.StopTimer()
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/open")
	})
}

// TestBrokerOnly: with --broker-only, cat and an unmodified Python start
// (the loader's world-readable files are served), the allowed root-only
// file is served, and a world-readable file the policy does not allow,
// which nobody could read itself, is refused with EACCES.
func TestBrokerOnly(t *testing.T) {
	f := newBrokerFixture(t)
	world := filepath.Join(f.dir, "world")
	writeMode(t, world, "for-everyone\n", 0o644)
	args := func(cmd ...string) []string {
		return append([]string{"exec", "--broker-only", "--user", "nobody", "--allow", "r:" + f.key, "--"}, cmd...)
	}
	r := privsep(t, nil, args("cat", f.key, world)...)
	checkCode(t, r, 1)
	checkStdout(t, r, "the-key\n")
	checkNotPrinted(t, r, "for-everyone")
	checkStderrContains(t, r, "Permission denied")

	// Without --broker-only, nobody reads the world-readable file itself.
	r = privsep(t, nil, brokerArgs([]string{"r:" + f.key}, "cat", world)...)
	checkCode(t, r, 0)
	checkStdout(t, r, "for-everyone\n")

	needPython(t)
	r = privsep(t, nil, args(brokerPython, "-c", "import os, sys; print(open(sys.argv[1]).read(), end='')\ntry:\n open(sys.argv[2])\nexcept OSError as e:\n print(e.errno)", f.key, world)...)
	checkCode(t, r, 0)
	checkStdout(t, r, "the-key\n13\n")
}
