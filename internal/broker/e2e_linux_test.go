//go:build linux && (amd64 || arm64)

package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const python = "/usr/bin/python3"

// hangGuard bounds a brokered run: a broker bug shows as a hang, and a
// test that fails is better than one the harness kills. It is not a
// timing assertion: a healthy run takes well under a second.
const hangGuard = 2 * time.Minute

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the program runs as nobody and the supervisor reads its memory")
	}
	if _, err := os.Stat(python); err != nil {
		t.Skipf("needs %s for the brokered programs: %v", python, err)
	}
}

type result struct {
	stdout, stderr string
	code           int
	signal         syscall.Signal // what killed the program, or 0
	serveErr       error
}

// wantOut fails the test unless the program exited 0 and printed exactly
// stdout; what names the run.
func (r result) wantOut(t testing.TB, what, stdout string) {
	t.Helper()
	if r.code != 0 || r.stdout != stdout {
		t.Fatalf("%s: exit %d, stdout %q, stderr %q; want 0, %q", what, r.code, r.stdout, r.stderr, stdout)
	}
}

// wantDenied fails the test unless the program failed as cat and Python
// do on EACCES: exit 1, nothing on stdout, "Permission denied" on stderr.
func (r result) wantDenied(t testing.TB, what string) {
	t.Helper()
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "Permission denied") {
		t.Fatalf("%s: exit %d, stdout %q, stderr %q; want 1, nothing, Permission denied", what, r.code, r.stdout, r.stderr)
	}
}

type runOpts struct {
	cwd      string
	execRole string // role of the exec'd program (a copy of the test binary)
	noFilter bool
	landlock bool
	serve    serveOpts
}

// runBrokered runs argv as nobody under the broker, with d serving in
// this process, and waits for it and for Serve to end.
func runBrokered(t testing.TB, d Decider, o runOpts, argv ...string) result {
	t.Helper()
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := sp[0], os.NewFile(uintptr(sp[1]), "broker-socket")
	defer unix.Close(ours)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	self, _ := os.Executable()
	cmd := exec.CommandContext(ctx, self, argv...)
	cmd.Env = append(os.Environ(), roleEnv+"=trampoline", execRoleEnv+"="+o.execRole, cwdEnv+"="+o.cwd)
	if o.noFilter {
		cmd.Env = append(cmd.Env, noFilterEnv+"=1")
	}
	if o.landlock {
		cmd.Env = append(cmd.Env, landlockEnv+"=1")
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.ExtraFiles = []*os.File{theirs}
	if err := cmd.Start(); err != nil {
		theirs.Close()
		t.Fatal(err)
	}
	theirs.Close()
	serveErr := make(chan error, 1)
	if o.noFilter {
		serveErr <- nil
	} else {
		lfd, err := recvListener(ours)
		if err != nil {
			cmd.Wait()
			t.Fatalf("%v; trampoline stderr: %s", err, stderr.String())
		}
		go func() { serveErr <- serve(ctx, lfd, d, o.serve) }()
		if _, err := unix.Write(ours, []byte{'A'}); err != nil {
			t.Fatal(err)
		}
	}
	err = cmd.Wait()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.signal = ws.Signal()
		}
	default:
		t.Fatalf("running %q: %v", argv, err)
	}
	// The program has exited: Serve sees the listener hang up and
	// returns nil on its own.
	r.serveErr = <-serveErr
	if ctx.Err() != nil {
		t.Fatalf("%q did not finish within %v: stdout %q, stderr %q", argv, hangGuard, r.stdout, r.stderr)
	}
	if r.serveErr != nil {
		t.Errorf("Serve: %v", r.serveErr)
	}
	return r
}

// fixture is a root-only tree the tests' programs reach only through the
// broker:
//
//	base/          0755
//	  secret       0600  not in any rule
//	  pub/         0755  (nobody may open it as a directory)
//	    key        0600
//	    world      0644  nobody reads it itself
//	  priv/        0700
//	    key        0600
//	    other      0600
//	    tree/      0700
//	      file     0600
//	      esc  -> ../other     (relative escape)
//	      abs  -> base/secret  (absolute escape)
type fixture struct {
	base, secret, pubKey, privKey, other, tree, world string
}

func newFixture(t testing.TB) fixture {
	t.Helper()
	base := t.TempDir()
	// TempDir's directories are 0700; nobody must reach base.
	for _, p := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f := fixture{
		base:    base,
		secret:  filepath.Join(base, "secret"),
		pubKey:  filepath.Join(base, "pub", "key"),
		privKey: filepath.Join(base, "priv", "key"),
		other:   filepath.Join(base, "priv", "other"),
		tree:    filepath.Join(base, "priv", "tree"),
		world:   filepath.Join(base, "pub", "world"),
	}
	mk := func(p string, mode os.FileMode) {
		if err := os.Mkdir(p, mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
	}
	mk(filepath.Join(base, "pub"), 0o755)
	mk(filepath.Join(base, "priv"), 0o700)
	mk(f.tree, 0o700)
	for p, s := range map[string]string{
		f.secret: "secret\n", f.pubKey: "pub key\n", f.privKey: "priv key\n",
		f.other: "other\n", filepath.Join(f.tree, "file"): "tree file\n",
	} {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(f.world, []byte("world\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../other", filepath.Join(f.tree, "esc")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(f.secret, filepath.Join(f.tree, "abs")); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestBrokerCatAllowedRootOnlyFile(t *testing.T) {
	needRoot(t)
	f := newFixture(t)
	d := newTestDecider(t, "r:"+f.privKey)
	r := runBrokered(t, d, runOpts{}, "/bin/cat", f.privKey)
	r.wantOut(t, "cat as nobody of an allowed root-only file", "priv key\n")
	if d.served.Load() != 1 {
		t.Errorf("served %d opens, want 1 (the loader's opens continue)", d.served.Load())
	}
	if d.continued.Load() == 0 {
		t.Errorf("no open continued: the loader's opens of libraries should have")
	}
}

func TestBrokerCatNotAllowedFails(t *testing.T) {
	needRoot(t)
	f := newFixture(t)
	d := newTestDecider(t, "r:"+f.privKey)
	r := runBrokered(t, d, runOpts{}, "/bin/cat", f.other)
	r.wantDenied(t, "cat of a file the policy does not allow")
	if d.served.Load() != 0 {
		t.Errorf("served %d opens, want 0", d.served.Load())
	}
}

func TestBrokerCatMissingFileIsENOENT(t *testing.T) {
	needRoot(t)
	f := newFixture(t)
	// priv/ is 0700: nobody's own open would fail with EACCES; the
	// opener's ENOENT is the answer, as for an Open request.
	d := newTestDecider(t, "r:"+filepath.Join(f.base, "priv")+"/")
	r := runBrokered(t, d, runOpts{}, "/bin/cat", filepath.Join(f.base, "priv", "missing"))
	if r.code != 1 || !strings.Contains(r.stderr, "No such file or directory") {
		t.Fatalf("cat of a missing allowed path: exit %d, stderr %q; want 1, No such file or directory", r.code, r.stderr)
	}
}

func TestBrokerPythonReadsAllowedFile(t *testing.T) {
	needRoot(t)
	f := newFixture(t)
	d := newTestDecider(t, "r:"+f.privKey)
	script := `import os, sys
print(os.getuid(), open(sys.argv[1]).read(), end="")
try:
    open(sys.argv[2])
except PermissionError as e:
    print("denied", e.errno)
`
	r := runBrokered(t, d, runOpts{}, python, "-c", script, f.privKey, f.other)
	r.wantOut(t, "python as nobody", "65534 priv key\ndenied 13\n")
}

func TestBrokerRelativePaths(t *testing.T) {
	needRoot(t)
	f := newFixture(t)
	d := newTestDecider(t, "r:"+filepath.Join(f.base, "priv")+"/", "r:"+f.pubKey)
	// cwd: the trampoline enters priv/ (0700) as root and keeps it as its
	// current directory after dropping to nobody.
	r := runBrokered(t, d, runOpts{cwd: filepath.Join(f.base, "priv")}, "/bin/cat", "key", "tree/file")
	r.wantOut(t, "cat key tree/file in priv/", "priv key\ntree file\n")
	// A directory descriptor: pub/ is searchable by nobody, so Python
	// opens it itself and then asks openat(dirfd, "key").
	script := `import os, sys
d = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
fd = os.open("key", os.O_RDONLY, dir_fd=d)
print(os.read(fd, 100).decode(), end="")
`
	r = runBrokered(t, d, runOpts{}, python, "-c", script, filepath.Join(f.base, "pub"))
	r.wantOut(t, "openat(dirfd, key)", "pub key\n")
}

// TestBrokerSymlinkEscapeRefused: the program names a symlink inside an
// allowed tree that leads out of it; containment refuses the open, the
// call continues with nobody's credentials and fails.
func TestBrokerSymlinkEscapeRefused(t *testing.T) {
	needRoot(t)
	f := newFixture(t)
	d := newTestDecider(t, "r:"+f.tree+"/")
	for _, name := range []string{"esc", "abs"} {
		r := runBrokered(t, d, runOpts{}, "/bin/cat", filepath.Join(f.tree, name))
		r.wantDenied(t, "cat tree/"+name)
	}
	if d.served.Load() != 0 {
		t.Errorf("served %d opens through an escaping symlink, want 0", d.served.Load())
	}
}

func TestBrokerWriteToReadOnlyRuleFails(t *testing.T) {
	needRoot(t)
	f := newFixture(t)
	d := newTestDecider(t, "r:"+f.privKey)
	script := `import os, sys
for how in ("w", "a", "r+"):
    try:
        with open(sys.argv[1], how) as fh:
            fh.write("changed")
        print(how, "wrote")
    except PermissionError as e:
        print(how, "denied", e.errno)
try:
    os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    print("creat opened")
except PermissionError as e:
    print("creat denied", e.errno)
`
	r := runBrokered(t, d, runOpts{}, python, "-c", script, f.privKey)
	want := "w denied 13\na denied 13\nr+ denied 13\ncreat denied 13\n"
	if r.stdout != want {
		t.Errorf("writes to a read-only rule's file: stdout %q, stderr %q; want %q", r.stdout, r.stderr, want)
	}
	if got, _ := os.ReadFile(f.privKey); string(got) != "priv key\n" {
		t.Errorf("file changed to %q", got)
	}
}

func TestBrokerExitStatusPassesThrough(t *testing.T) {
	needRoot(t)
	f := newFixture(t)
	d := newTestDecider(t, "r:"+f.privKey)
	r := runBrokered(t, d, runOpts{}, python, "-c", "import sys; open(sys.argv[1]).read(); sys.exit(7)", f.privKey)
	if r.code != 7 {
		t.Errorf("exit status %d, want 7 (stderr %q)", r.code, r.stderr)
	}
	// A child of the program inherits the filter: the shell's cat is
	// served too, and the shell's status comes through.
	r = runBrokered(t, d, runOpts{}, "/bin/sh", "-c", `/bin/cat "$1"; exit 5`, "sh", f.privKey)
	if r.code != 5 || r.stdout != "priv key\n" {
		t.Errorf("sh -c 'cat; exit 5': exit %d, stdout %q, stderr %q; want 5, %q", r.code, r.stdout, r.stderr, "priv key\n")
	}
	r = runBrokered(t, d, runOpts{}, python, "-c", "import os; os.kill(os.getpid(), 9)")
	if r.code != -1 {
		t.Errorf("a program killed by a signal: exit %d, want -1 (signalled)", r.code)
	}
}

func countFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestBrokerManyOpensNoSupervisorLeak(t *testing.T) {
	needRoot(t)
	f := newFixture(t)
	d := newTestDecider(t, "r:"+f.privKey, "r:"+filepath.Join(f.base, "priv")+"/")
	const n = 3000
	script := `import os, sys
n = int(sys.argv[2])
for i in range(n):
    fd = os.open(sys.argv[1], os.O_RDONLY)
    os.close(fd)
# refusals and misses too: they must not leak either
for i in range(200):
    try: os.open(sys.argv[3], os.O_RDONLY)
    except OSError: pass
    try: os.open("missing", os.O_RDONLY)
    except OSError: pass
print("done")
`
	before := countFDs(t)
	r := runBrokered(t, d, runOpts{cwd: filepath.Join(f.base, "priv")}, python, "-c", script, f.privKey, strconv.Itoa(n), f.secret)
	after := countFDs(t)
	r.wantOut(t, "python opening in a loop", "done\n")
	if d.served.Load() < n {
		t.Errorf("served %d opens, want at least %d", d.served.Load(), n)
	}
	if before != after {
		t.Errorf("supervisor descriptors: %d before, %d after %d brokered opens", before, after, n)
	}
}

func TestBrokerSixteenThreads(t *testing.T) {
	needRoot(t)
	f := newFixture(t)
	d := newTestDecider(t, "r:"+f.privKey, "r:"+f.pubKey)
	// Threads 0 and 1 mod 4 open absolute paths, 2 a path relative to
	// the current directory, 3 relative to a directory descriptor: the
	// last two make the supervisor find the directory of a thread that is
	// not the thread-group leader.
	script := `import os, sys, threading
paths = {sys.argv[1]: b"priv key\n", sys.argv[2]: b"pub key\n"}
dfd = os.open(os.path.dirname(sys.argv[1]), os.O_PATH | os.O_DIRECTORY)
errors = []
barrier = threading.Barrier(16)
def work(i):
    barrier.wait()
    p = list(paths)[i % 2]
    for _ in range(200):
        if i % 4 == 2:
            p = sys.argv[1]
            fd = os.open("key", os.O_RDONLY | os.O_CLOEXEC)
        elif i % 4 == 3:
            p = sys.argv[1]
            fd = os.open("key", os.O_RDONLY | os.O_CLOEXEC, dir_fd=dfd)
        else:
            fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
        data = os.read(fd, 100)
        os.close(fd)
        if data != paths[p]:
            errors.append((p, data))
ts = [threading.Thread(target=work, args=(i,)) for i in range(16)]
for t in ts: t.start()
for t in ts: t.join()
print("errors", len(errors))
`
	for _, o := range []serveOpts{{}, {noPidfdThread: true}} {
		d.served.Store(0)
		r := runBrokered(t, d, runOpts{cwd: filepath.Dir(f.privKey), serve: o}, python, "-c", script, f.privKey, f.pubKey)
		r.wantOut(t, fmt.Sprintf("16 threads (%+v)", o), "errors 0\n")
		if got := d.served.Load(); got != 16*200 {
			t.Errorf("16 threads (%+v): served %d opens, want %d", o, got, 16*200)
		}
	}
}

// TestBrokerDeciderMistakes: a Decider's zero Answer, Fail(0) and a
// Place of a bad descriptor fail the call (EACCES, EACCES, EBADF); none
// makes it return 0 (the program's stdin) or hang.
func TestBrokerDeciderMistakes(t *testing.T) {
	needRoot(t)
	f := newFixture(t)
	d := DeciderFunc(func(r *Request) Answer {
		switch filepath.Base(r.Path) {
		case "zero":
			return Answer{}
		case "fail0":
			return Fail(0)
		case "badfd":
			return Place(-1)
		}
		return Continue()
	})
	script := `import os, sys
for name in ("zero", "fail0", "badfd"):
    try:
        fd = os.open(os.path.join(sys.argv[1], name), os.O_RDONLY)
        print(name, "returned", fd)
    except OSError as e:
        print(name, "errno", e.errno)
`
	r := runBrokered(t, d, runOpts{}, python, "-c", script, f.base)
	want := "zero errno 13\nfail0 errno 13\nbadfd errno 9\n"
	if r.stdout != want {
		t.Errorf("stdout %q, stderr %q; want %q", r.stdout, r.stderr, want)
	}
}
