//go:build linux && (amd64 || arm64)

package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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

// TestBrokerSupervisorDeathFailsPendingCalls kills the supervisor while
// it holds a call unanswered: the pending call and every later one fail
// with ENOSYS, and the program runs on to its end instead of hanging.
func TestBrokerSupervisorDeathFailsPendingCalls(t *testing.T) {
	supervisorDeath(t, false)
}

// TestBrokerSupervisorDeathKillsProgram: the same with KillWhenExits
// watching (this test process plays the watcher): the program is killed,
// and prints nothing after the first, served open.
func TestBrokerSupervisorDeathKillsProgram(t *testing.T) {
	supervisorDeath(t, true)
}

func supervisorDeath(t *testing.T, watch bool) {
	needRoot(t)
	f := newFixture(t)
	block := filepath.Join(f.base, "priv", "block")
	toProg, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	self, _ := os.Executable()
	sup := exec.CommandContext(ctx, self, "r:"+f.privKey)
	sup.Env = append(os.Environ(), roleEnv+"=supervisor")
	supOut, err := sup.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var supErr bytes.Buffer
	sup.Stderr = &supErr
	supEnd := os.NewFile(uintptr(toProg[0]), "sup")
	progEnd := os.NewFile(uintptr(toProg[1]), "prog")
	sup.ExtraFiles = []*os.File{supEnd}
	script := `import os, sys
print(open(sys.argv[1]).read(), end="", flush=True)
for p in (sys.argv[2], sys.argv[1]):
    try:
        open(p)
        print("opened", flush=True)
    except OSError as e:
        print("errno", e.errno, flush=True)
`
	prog := exec.CommandContext(ctx, self, python, "-c", script, f.privKey, block)
	prog.Env = append(os.Environ(), roleEnv+"=trampoline", execRoleEnv+"=")
	var progOut, progErr bytes.Buffer
	prog.Stdout, prog.Stderr = &progOut, &progErr
	prog.ExtraFiles = []*os.File{progEnd}
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	if err := prog.Start(); err != nil {
		t.Fatal(err)
	}
	supEnd.Close()
	progEnd.Close()
	head := make([]byte, len("listener 123\n"))
	if _, err := io.ReadFull(supOut, head); err != nil {
		sup.Process.Kill()
		prog.Process.Kill()
		t.Fatalf("supervisor: %q, %v; stderr %s; program stderr %s", head, err, supErr.String(), progErr.String())
	}
	watched := make(chan error, 1)
	if watch {
		supFD, err := unix.PidfdOpen(sup.Process.Pid, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(supFD)
		progFD, err := unix.PidfdOpen(prog.Process.Pid, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(progFD)
		// The watcher holds a copy of the listener: while it does, the
		// dead supervisor's pending call waits instead of failing, so the
		// program is killed before it sees an ENOSYS.
		var lfdNum int
		fmt.Sscanf(string(head), "listener %d", &lfdNum)
		lcopy, err := unix.PidfdGetfd(supFD, lfdNum, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(lcopy)
		go func() { watched <- KillWhenExits(ctx, supFD, progFD) }()
	}
	line := make([]byte, len("blocked\n"))
	if _, err := io.ReadFull(supOut, line); err != nil || string(line) != "blocked\n" {
		sup.Process.Kill()
		prog.Process.Kill()
		t.Fatalf("supervisor did not block a call: %q, %v; stderr %s; program stderr %s", line, err, supErr.String(), progErr.String())
	}
	sup.Process.Kill()
	sup.Wait()
	err = prog.Wait()
	if ctx.Err() != nil {
		t.Fatalf("the program hung after its supervisor died")
	}
	if watch {
		if werr := <-watched; werr != nil {
			t.Errorf("KillWhenExits: %v", werr)
		}
		ws, _ := prog.ProcessState.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGKILL || progOut.String() != "priv key\n" {
			t.Errorf("program after supervisor death: %v, stdout %q; want killed by SIGKILL after %q", err, progOut.String(), "priv key\n")
		}
		return
	}
	want := "priv key\nerrno 38\nerrno 38\n"
	if progOut.String() != want {
		t.Errorf("program after supervisor death: stdout %q, stderr %q, %v; want %q", progOut.String(), progErr.String(), err, want)
	}
}

// TestBrokerWithLandlock: under Landlock, which allows the program only
// the system's directories, the file the opener serves is readable (the
// opener opened it, outside the program's domain) and a world-readable
// file the policy does not allow is not (the call continues, and
// Landlock refuses nobody's own open).
func TestBrokerWithLandlock(t *testing.T) {
	needRoot(t)
	f := newFixture(t)
	d := newTestDecider(t, "r:"+f.privKey)
	r := runBrokered(t, d, runOpts{}, "/bin/cat", f.world)
	r.wantOut(t, "without Landlock nobody reads "+f.world+" itself", "world\n")
	r = runBrokered(t, d, runOpts{landlock: true}, "/bin/cat", f.privKey)
	r.wantOut(t, "cat of the served file under Landlock", "priv key\n")
	r = runBrokered(t, d, runOpts{landlock: true}, "/bin/cat", f.world)
	r.wantDenied(t, "cat of a file outside Landlock and the policy")
}

// loaderRules are what a broker-only decider serves beyond the policy so
// that dynamically linked programs start: the loader's cache and the
// library trees, read-only, world-readable files only.
var loaderRules = []string{
	"r:/etc/ld.so.cache",
	"r:/usr/lib/ dirs=yes hardlinks=yes",
	"r:/usr/lib64/ dirs=yes hardlinks=yes",
	"r:/lib/ dirs=yes hardlinks=yes",
	"r:/lib64/ dirs=yes hardlinks=yes",
}

func newBrokerOnlyDecider(t testing.TB, rules ...string) *testDecider {
	t.Helper()
	d := newTestDecider(t, rules...)
	d.brokerOnly = true
	var present []string
	for _, r := range loaderRules {
		p := strings.Fields(r)[0][2:]
		if _, err := os.Stat(p); err == nil {
			present = append(present, r)
		}
	}
	l, err := newTestDeciderLines(present)
	if err != nil {
		t.Fatal(err)
	}
	l.worldReadable = true
	d.loader = l
	return d
}

// TestBrokerOnly: everything the policy does not allow is refused, even
// a file nobody could read itself, yet cat and Python, dynamically
// linked, still start: their loader's and interpreter's files are served
// read-only from the loader rules. No call is continued.
func TestBrokerOnly(t *testing.T) {
	needRoot(t)
	f := newFixture(t)
	d := newBrokerOnlyDecider(t, "r:"+f.privKey)
	r := runBrokered(t, d, runOpts{}, "/bin/cat", f.privKey)
	r.wantOut(t, "broker-only cat of the allowed file", "priv key\n")
	r = runBrokered(t, d, runOpts{}, "/bin/cat", f.world)
	r.wantDenied(t, "broker-only cat of a world-readable file the policy does not allow")
	script := `import sys, json
print(open(sys.argv[1]).read(), end="")
try:
    open(sys.argv[2])
except PermissionError as e:
    print("denied", e.errno)
`
	r = runBrokered(t, d, runOpts{}, python, "-c", script, f.privKey, f.world)
	r.wantOut(t, "broker-only python", "priv key\ndenied 13\n")
	if n := d.continued.Load(); n != 0 {
		t.Errorf("broker-only continued %d calls, want 0", n)
	}
}

// TestServeCancelFailsLaterCalls cancels Serve while the program runs:
// Serve returns context.Canceled and closes the listener, and the
// program's next open fails with ENOSYS instead of waiting for an answer
// nobody will give.
func TestServeCancelFailsLaterCalls(t *testing.T) {
	needRoot(t)
	f := newFixture(t)
	d := newTestDecider(t, "r:"+f.privKey)
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sp[0])
	guard, cancelGuard := context.WithTimeout(context.Background(), hangGuard)
	defer cancelGuard()
	self, _ := os.Executable()
	script := `import sys
print(open(sys.argv[1]).read(), end="", flush=True)
sys.stdin.readline()
try:
    open(sys.argv[1])
    print("opened")
except OSError as e:
    print("errno", e.errno)
`
	cmd := exec.CommandContext(guard, self, python, "-c", script, f.privKey)
	cmd.Env = append(os.Environ(), roleEnv+"=trampoline", execRoleEnv+"=")
	theirs := os.NewFile(uintptr(sp[1]), "theirs")
	cmd.ExtraFiles = []*os.File{theirs}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	lfd, err := recvListener(sp[0])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(guard)
	serveErr := make(chan error, 1)
	go func() { serveErr <- Serve(ctx, lfd, d) }()
	unix.Write(sp[0], []byte{'A'})
	line := make([]byte, len("priv key\n"))
	if _, err := io.ReadFull(stdout, line); err != nil || string(line) != "priv key\n" {
		t.Fatalf("first open: %q, %v", line, err)
	}
	cancel()
	if err := <-serveErr; !errors.Is(err, context.Canceled) {
		t.Errorf("Serve after cancel: %v, want context.Canceled", err)
	}
	stdin.Write([]byte("\n"))
	rest, _ := io.ReadAll(stdout)
	cmd.Wait()
	if guard.Err() != nil {
		t.Fatal("the program hung after Serve was cancelled")
	}
	if string(rest) != "errno 38\n" {
		t.Errorf("open after Serve ended: %q, want errno 38 (ENOSYS)", rest)
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
