//go:build linux

package main

// End-to-end tests of "privsep exec": the built binary opens files through
// its opener, drops privileges and execs a command with the descriptors.

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/testutil"
)

// checkOnePrefix checks that no stderr line says "privsep" twice over, as
// in "privsep exec: privsep: ...".
func checkOnePrefix(t *testing.T, r result) {
	t.Helper()
	if strings.Contains(r.stderr, ": privsep: ") {
		t.Errorf("stderr: got %q, want one \"privsep\" prefix per line", r.stderr)
	}
}

// execFiles lays out the files most exec tests use, in a public directory:
//
//	dir/secret   mode 0600, root's: secretData
//	dir/a.txt    "alpha\n"
//	dir/b.txt    "beta\n"
type execFiles struct {
	dir, secret, a, b string
}

const secretData = "root-only secret\n"

func newExecFiles(t *testing.T) execFiles {
	t.Helper()
	dir := publicDir(t)
	f := execFiles{dir: dir, secret: filepath.Join(dir, "secret"), a: filepath.Join(dir, "a.txt"), b: filepath.Join(dir, "b.txt")}
	writeMode(t, f.secret, secretData, 0o600)
	writeFile(t, f.a, "alpha\n")
	writeFile(t, f.b, "beta\n")
	return f
}

// TestExecRootOnlyFile is the classic case: a root-only file, opened as
// root, read by a command that runs as nobody and could not open it itself.
func TestExecRootOnlyFile(t *testing.T) {
	t.Parallel()
	testutil.NeedRoot(t, "opening a root-only file and dropping to nobody")
	f := newExecFiles(t)
	in := inDir(f.dir)

	t.Run("through the descriptor", func(t *testing.T) {
		t.Parallel()
		r := privsep(t, in, "exec", "--open", "3="+f.secret, "--user", "nobody", "--", "sh", "-c", "cat <&3")
		checkCode(t, r, 0)
		checkStdout(t, r, secretData)
		checkStderrLines(t, r)
	})
	t.Run("by path", func(t *testing.T) {
		t.Parallel()
		r := privsep(t, in, "exec", "--open", "3="+f.secret, "--user", "nobody", "--", "sh", "-c", "cat "+f.secret)
		checkCode(t, r, 1) // cat's status, through sh
		checkStdout(t, r, "")
		checkStderrContains(t, r, "Permission denied")
		checkNotPrinted(t, r, secretData)
	})
	t.Run("identity", func(t *testing.T) {
		t.Parallel()
		r := privsep(t, in, "exec", "--user", "nobody", "--", "sh", "-c",
			`id -u; id -g; grep -E '^(Uid|Gid|Groups|NoNewPrivs):' /proc/self/status`)
		checkCode(t, r, 0)
		got := strings.Join(strings.Fields(r.stdout), " ")
		want := "65534 65534 Uid: 65534 65534 65534 65534 Gid: 65534 65534 65534 65534 Groups: NoNewPrivs: 1"
		if got != want {
			t.Errorf("ids, groups and no_new_privs of CMD: got %q, want %q", got, want)
		}
	})
	for _, tc := range []struct {
		name      string
		user, grp string
		uid, gid  string
	}{
		{"numeric user", "65534", "", "65534", "65534"},
		{"group by name", "nobody", "root", "65534", "0"},
		{"group by number", "nobody", "4242", "65534", "4242"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"exec", "--user", tc.user}
			if tc.grp != "" {
				args = append(args, "--group", tc.grp)
			}
			args = append(args, "--", "sh", "-c", `echo $(id -u) $(id -g) "$(grep '^Groups:' /proc/self/status)"`)
			r := privsep(t, in, args...)
			checkCode(t, r, 0)
			if got, want := strings.Join(strings.Fields(r.stdout), " "), tc.uid+" "+tc.gid+" Groups:"; got != want {
				t.Errorf("--user %s --group %s: got %q, want %q", tc.user, tc.grp, got, want)
			}
		})
	}
}

// TestExecListenFDs: the systemd socket-activation variables, set exactly
// when the descriptors are 3, 4, ... with nothing missing.
func TestExecListenFDs(t *testing.T) {
	t.Parallel()
	f := newExecFiles(t)
	// The variables, "-" when unset, $$ and $PPID.
	const show = `echo "${LISTEN_FDS--} ${LISTEN_PID--} $$ ${LISTEN_FDNAMES--} $PPID"`
	me := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		name  string
		opens []string
		read  string // a shell command printing what the descriptors hold
		fds   string // LISTEN_FDS, or "-"
		names string // LISTEN_FDNAMES, or "-"
		out   string // what read prints
	}{
		{"auto-numbered", []string{f.a, f.b}, "cat <&3; cat <&4", "2", "a.txt:b.txt", "alpha\nbeta\n"},
		{"explicit", []string{"3=" + f.a, "4=" + f.b}, "cat <&3; cat <&4", "2", "a.txt:b.txt", "alpha\nbeta\n"},
		{"one", []string{f.b}, "cat <&3", "1", "b.txt", "beta\n"},
		{"not from 3", []string{"5=" + f.a}, "cat <&5", "-", "-", "alpha\n"},
		{"a gap", []string{"3=" + f.a, "5=" + f.b}, "cat <&3; cat <&5", "-", "-", "alpha\nbeta\n"},
		// The names go in descriptor order: fd 3 first.
		{"numbered out of order", []string{"4=" + f.a, "3=" + f.b}, "cat <&3; cat <&4", "2", "b.txt:a.txt", "beta\nalpha\n"},
		{"auto after explicit", []string{"4=" + f.a, f.b}, "cat <&3; cat <&4", "2", "b.txt:a.txt", "beta\nalpha\n"},
		{"same file twice", []string{f.a, f.a}, "cat <&3; cat <&4", "2", "a.txt:a.txt", "alpha\nalpha\n"},
		{"none", nil, "true", "-", "-", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"exec"}
			for _, o := range tc.opens {
				args = append(args, "--open", o)
			}
			args = append(args, "--", "sh", "-c", show+"; "+tc.read)
			// Stale variables from whoever ran privsep must not survive.
			r := privsep(t, withEnv("LISTEN_FDS=9", "LISTEN_PID=1", "LISTEN_FDNAMES=stale"), args...)
			checkCode(t, r, 0)
			checkStderrLines(t, r)
			line, rest, _ := strings.Cut(r.stdout, "\n")
			v := strings.Fields(line)
			if len(v) != 5 {
				t.Fatalf("got %q, want five fields", line)
			}
			if v[0] != tc.fds || v[3] != tc.names {
				t.Errorf("LISTEN_FDS=%s LISTEN_FDNAMES=%s, want %s and %s", v[0], v[3], tc.fds, tc.names)
			}
			pid := v[2]
			if tc.fds == "-" {
				pid = "-"
			}
			if v[1] != pid {
				t.Errorf("LISTEN_PID=%s, want %s (the command's pid is %s)", v[1], pid, v[2])
			}
			// exec keeps the pid: the command is the process the test
			// started.
			if v[4] != me {
				t.Errorf("the command's parent is %s, want the test (%s): privsep did not exec in place", v[4], me)
			}
			if rest != tc.out {
				t.Errorf("the descriptors hold %q, want %q", rest, tc.out)
			}
		})
	}
}

// inheritedFDs returns the descriptors above 2 that this process holds
// without close-on-exec: they came from whoever started the tests, and pass
// on to every program the tests run, privsep and its command included.
func inheritedFDs(t *testing.T) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var fds []int
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			fds = append(fds, fd)
		}
	}
	return fds
}

// TestExecPassesOnlyItsDescriptors: CMD gets 0, 1, 2 and the --open
// descriptors, nothing of privsep's own (the opener's socket, its pipes)
// and nothing privsep itself inherited (what the tests inherited).
func TestExecPassesOnlyItsDescriptors(t *testing.T) {
	t.Parallel()
	f := newExecFiles(t)
	inherited := inheritedFDs(t)
	for _, tc := range []struct {
		args []string
		want []int
	}{
		{[]string{"--open", f.a, "--open", f.b}, []int{0, 1, 2, 3, 4}},
		{[]string{"--open", "7=" + f.a}, []int{0, 1, 2, 7}},
		{nil, []int{0, 1, 2}},
	} {
		// ls runs as a child of sh (":" comes last), so it lists sh's
		// descriptors, not its own.
		args := append(append([]string{"exec"}, tc.args...), "--", "sh", "-c", "ls /proc/$$/fd; :")
		r := privsep(t, nil, args...)
		checkCode(t, r, 0)
		if got := fdList(t, r.stdout); !slices.Equal(got, tc.want) {
			t.Errorf("exec %q: the command has descriptors %v, want %v (%v inherited by the tests, not to be passed on)", tc.args, got, tc.want, inherited)
		}
	}
}

// execStatusCase is a run of privsep exec that prints nothing on stdout:
// its exit status and what stderr must say.
type execStatusCase struct {
	name string
	args []string // after "exec"
	code int
	want []string // substrings of stderr
}

// runExecStatusCases runs each case in dir. A status of privsep's own
// (125 to 127, unless the case's name says it is CMD's own) comes with a
// message that starts "privsep exec: " (or is the flag package's); a
// success or CMD's 42 with no message at all.
func runExecStatusCases(t *testing.T, dir string, cases []execStatusCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := privsep(t, inDir(dir), append([]string{"exec"}, tc.args...)...)
			checkCode(t, r, tc.code)
			checkStdout(t, r, "")
			checkStderrContains(t, r, tc.want...)
			if tc.code >= 125 && tc.code <= 127 && !strings.Contains(tc.name, "own") && !strings.HasPrefix(r.stderr, "privsep exec: ") && !strings.HasPrefix(r.stderr, "invalid value") && !strings.HasPrefix(r.stderr, "flag provided") {
				t.Errorf("stderr: got %q, want it to start with \"privsep exec: \"", r.stderr)
			}
			if tc.code == 0 || tc.code == 42 {
				checkStderrLines(t, r)
			}
		})
	}
}

// TestExecExitStatus: 125 when privsep fails, 126 when CMD cannot run, 127
// when it is missing, else CMD's own; the message names the problem.
func TestExecExitStatus(t *testing.T) {
	t.Parallel()
	f := newExecFiles(t)
	notExec := filepath.Join(f.dir, "not-executable")
	writeMode(t, notExec, "#!/bin/sh\necho ran\n", 0o644)
	garbage := filepath.Join(f.dir, "garbage")
	writeMode(t, garbage, "\x00\x01\x02 not a program", 0o755)
	badPolicy := filepath.Join(f.dir, "bad.policy")
	writeFile(t, badPolicy, "# a policy\nr:relative/path\n")
	goodPolicy := filepath.Join(f.dir, "good.policy")
	writeFile(t, goodPolicy, "r:"+f.a+"\n")
	runExecStatusCases(t, f.dir, []execStatusCase{
		{"no CMD", []string{"--open", f.a}, 125, []string{"no CMD"}},
		{"no CMD after --", []string{"--"}, 125, []string{"no CMD"}},
		{"FD not a number", []string{"--open", "x=" + f.a, "--", "true"}, 125, []string{"not a descriptor number"}},
		{"negative FD", []string{"--open", "-1=" + f.a, "--", "true"}, 125, []string{"not a descriptor number"}},
		{"relative --open with ..", []string{"--open", "3=../x/a.txt", "--", "true"}, 125, []string{"a.txt", "not clean"}},
		{"tree --open", []string{"--open", f.dir + "/", "--", "true"}, 125, []string{"not a tree"}},
		{"--open that opens nothing", []string{"--open", "c:" + f.a, "--", "true"}, 125, []string{"open nothing"}},
		{"FD given twice", []string{"--open", "3=" + f.a, "--open", "3=" + f.b, "--", "true"}, 125, []string{"descriptor 3 given twice"}},
		{"bad rule", []string{"--allow", "../etc/hostname", "--", "true"}, 125, []string{"etc/hostname"}},
		{"bad policy file", []string{"--policy", badPolicy, "--", "true"}, 125, []string{badPolicy + ":2:"}},
		{"missing policy file", []string{"--policy", f.dir + "/missing.policy", "--", "true"}, 125, []string{f.dir + "/missing.policy"}},
		{"unknown flag", []string{"--frob", "--", "true"}, 125, []string{"frob"}},
		{"unknown log level", []string{"--log-level", "loud", "--", "true"}, 125, []string{`"loud"`}},
		{"unknown user", []string{"--user", "no-such-user-privsep", "--", "true"}, 125, []string{"no-such-user-privsep"}},
		{"unknown group", []string{"--user", "nobody", "--group", "no-such-group-privsep", "--", "true"}, 125, []string{"no-such-group-privsep"}},
		{"group without user", []string{"--group", "nogroup", "--", "true"}, 125, []string{"--group needs --user"}},
		{"denied --open", []string{"--allow", f.a, "--open", "3=" + f.b, "--", "true"}, 125, []string{f.b, "denied by policy"}},
		{"denied by a policy file", []string{"--policy", goodPolicy, "--open", "3=" + f.b, "--", "true"}, 125, []string{f.b, "denied by policy"}},
		{"missing --open", []string{"--open", "3=" + f.dir + "/missing", "--", "true"}, 125, []string{"no such file"}},
		{"writing a missing file without c", []string{"--open", "3=w:" + f.dir + "/missing", "--", "true"}, 125, []string{"no such file"}},
		{"descriptor beyond the limit", []string{"--open", "100000000=" + f.a, "--", "true"}, 125, []string{f.a}},
		{"not executable", []string{"--", notExec}, 126, []string{notExec}},
		{"a directory", []string{"--", f.dir}, 126, []string{f.dir}},
		{"not a program", []string{"--open", f.a, "--", garbage}, 126, []string{garbage}},
		{"missing", []string{"--", "no-such-command-privsep"}, 127, []string{"no-such-command-privsep"}},
		{"missing path", []string{"--", f.dir + "/no/such/cmd"}, 127, []string{f.dir + "/no/such/cmd"}},
		{"own status", []string{"--", "sh", "-c", "exit 42"}, 42, nil},
		{"own status 125", []string{"--", "sh", "-c", "exit 125"}, 125, nil},
		{"own success", []string{"--open", f.a, "--", "true"}, 0, nil},
		{"a policy file that allows", []string{"--policy", goodPolicy, "--open", "3=" + f.a, "--", "true"}, 0, nil},
	})
	t.Run("help", func(t *testing.T) {
		t.Parallel()
		checkHelp(t, privsep(t, nil, "exec", "--help"), "Usage: privsep exec")
	})
}

// TestExecExitStatusAsRoot: the cases that need root to set up.
func TestExecExitStatusAsRoot(t *testing.T) {
	t.Parallel()
	testutil.NeedRoot(t, "dropping to nobody")
	f := newExecFiles(t)
	rootOnly := filepath.Join(f.dir, "root-only-cmd")
	writeMode(t, rootOnly, "#!/bin/sh\necho ran\n", 0o700)
	runExecStatusCases(t, f.dir, []execStatusCase{
		// Root finds it executable; nobody, after the drop, may not run it.
		{"only root may run CMD", []string{"--user", "nobody", "--", rootOnly}, 126, []string{rootOnly}},
		// Ids the kernel would take as "unchanged": the drop must fail.
		{"uid -1", []string{"--user", "-1", "--", "true"}, 125, nil},
		{"uid 4294967295", []string{"--user", "4294967295", "--", "true"}, 125, nil},
		{"gid -1", []string{"--user", "nobody", "--group", "-1", "--", "true"}, 125, nil},
		{"gid 4294967295", []string{"--user", "nobody", "--group", "4294967295", "--", "true"}, 125, nil},
	})
}

// TestExecMessagesHaveOnePrefix: privsep's own failures read "privsep exec:
// what went wrong", not "privsep exec: privsep: ...", as cat's do.
func TestExecMessagesHaveOnePrefix(t *testing.T) {
	t.Parallel()
	testutil.NeedRoot(t, "a drop that fails")
	r := privsep(t, nil, "exec", "--user", "-1", "--", "true")
	checkCode(t, r, 125)
	checkStderrLines(t, r, "privsep exec: ")
	checkOnePrefix(t, r)
}

// TestExecWriteModes: --open with w, a and c, through a command that runs
// as nobody in a directory it may not write.
func TestExecWriteModes(t *testing.T) {
	t.Parallel()
	testutil.NeedRoot(t, "writing root's files as nobody")
	f := newExecFiles(t)

	t.Run("create", func(t *testing.T) {
		t.Parallel()
		p := filepath.Join(f.dir, "new")
		r := privsep(t, nil, "exec", "--open", "3=wc:"+p, "--user", "nobody", "--", "sh", "-c", "echo hi >&3")
		checkCode(t, r, 0)
		checkStderrLines(t, r)
		if b, err := os.ReadFile(p); err != nil || string(b) != "hi\n" {
			t.Errorf("the created file holds %q (%v), want %q", b, err, "hi\n")
		}
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if uid := st.Sys().(*syscall.Stat_t).Uid; uid != 0 {
			t.Errorf("the created file is owned by %d, want root (no owner= option)", uid)
		}
		if m := st.Mode(); !m.IsRegular() || m.Perm()&^0o666 != 0 {
			t.Errorf("the created file has mode %v, want a regular file without execute or special bits", m)
		}
	})
	t.Run("create with owner", func(t *testing.T) {
		t.Parallel()
		sub := filepath.Join(f.dir, "owned")
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		pol := filepath.Join(f.dir, "owned.policy")
		writeFile(t, pol, "wc:"+sub+"/ mode=0640 owner=nobody\n")
		p := filepath.Join(sub, "new")
		r := privsep(t, nil, "exec", "--policy", pol, "--open", "3=wc:"+p, "--user", "nobody", "--", "sh", "-c", "echo owned >&3")
		checkCode(t, r, 0)
		checkStderrLines(t, r)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if uid := st.Sys().(*syscall.Stat_t).Uid; uid != 65534 {
			t.Errorf("the created file is owned by %d, want nobody (owner=nobody)", uid)
		}
		if m := st.Mode().Perm(); m&^0o640 != 0 {
			t.Errorf("the created file has mode %v, want at most 0640", m)
		}
	})
	// A root-only file that exists, through a descriptor of each mode.
	for _, tc := range []struct {
		name, file, mode   string // mode: the --open prefix
		before, script     string
		code               int // -1: any failure
		stdout, afterwards string
	}{
		// The descriptor is write-only: cat fails.
		{"append", "log", "a:", "old\n", "echo new >&3; cat <&3", 1, "", "old\nnew\n"},
		{"read and write", "rw", "rw:", "first\n", "cat <&3; echo second >&3", 0, "first\n", "first\nsecond\n"},
		{"read-only descriptor", "ro", "", "keep\n", "echo clobber >&3", -1, "", "keep\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(f.dir, tc.file)
			writeMode(t, p, tc.before, 0o600)
			r := privsep(t, nil, "exec", "--open", "3="+tc.mode+p, "--user", "nobody", "--", "sh", "-c", tc.script)
			if tc.code >= 0 {
				checkCode(t, r, tc.code)
			} else if r.code == 0 {
				t.Errorf("%q through --open %s succeeded, want it to fail", tc.script, tc.mode+p)
			}
			checkStdout(t, r, tc.stdout)
			if b, err := os.ReadFile(p); err != nil || string(b) != tc.afterwards {
				t.Errorf("the file holds %q (%v), want %q", b, err, tc.afterwards)
			}
		})
	}
}

// TestExecLandlock: with --landlock the command reaches files only through
// its descriptors (and may run what is under the system directories).
func TestExecLandlock(t *testing.T) {
	t.Parallel()
	if testutil.LandlockABI() <= 0 {
		t.Skip("needs Landlock: landlock_create_ruleset(LANDLOCK_CREATE_RULESET_VERSION) fails in this kernel")
	}
	f := newExecFiles(t)
	script := filepath.Join(f.dir, "script")
	writeMode(t, script, "#!/bin/sh\ncat <&3\n", 0o755)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string // a substring
	}{
		{"by path", []string{"--landlock", "--", "sh", "-c", "cat " + f.a}, 1, "", "Permission denied"},
		{"a system file by path", []string{"--landlock", "--", "sh", "-c", "cat /etc/passwd"}, 1, "", "Permission denied"},
		{"through the descriptor", []string{"--landlock", "--open", "3=" + f.a, "--", "sh", "-c", "cat <&3"}, 0, "alpha\n", ""},
		{"creating a file", []string{"--landlock", "--", "sh", "-c", "echo x > " + f.dir + "/created || exit 9"}, 9, "", "ermission denied"},
		{"CMD outside the system directories", []string{"--landlock", "--open", "3=" + f.b, "--", script}, 0, "beta\n", ""},
		{"as nobody", []string{"--landlock", "--user", "nobody", "--open", "3=" + f.secret, "--", "sh", "-c", "cat <&3; cat " + f.a}, 1, secretData, "Permission denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if slices.Contains(tc.args, "--user") {
				testutil.NeedRoot(t, "dropping to nobody")
			}
			r := privsep(t, inDir(f.dir), append(append([]string{"exec"}, landlockAnyTCPHere()...), tc.args...)...)
			checkCode(t, r, tc.code)
			checkStdout(t, r, tc.stdout)
			checkStderrContains(t, r, tc.stderr)
		})
	}
	if _, err := os.Stat(filepath.Join(f.dir, "created")); err == nil {
		t.Errorf("a command under --landlock created a file")
	}
}
