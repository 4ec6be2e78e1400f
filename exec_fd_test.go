//go:build linux

package main

// privsep exec passes CMD only the descriptors it placed (and --keep-fd
// ones), places them without racing the Go runtime, and sets the target
// user's HOME, USER, LOGNAME and SHELL.

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/privsep-go/privsep/internal/testutil"
)

// withFD7 gives privsep f as descriptor 7, without close-on-exec, as a
// shell's "7</etc/shadow" on privsep's own command line would.
func withFD7(f *os.File) func(*exec.Cmd) {
	return func(c *exec.Cmd) { c.ExtraFiles = []*os.File{nil, nil, nil, nil, f} }
}

// openFD7 opens path read-only, for withFD7; the file is closed when the
// test ends.
func openFD7(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	testutil.Must(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

// fdList parses the output of ls /proc/PID/fd, sorted.
func fdList(t *testing.T, out string) []int {
	t.Helper()
	var got []int
	for _, s := range strings.Fields(out) {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("ls: %q", out)
		}
		got = append(got, n)
	}
	slices.Sort(got)
	return got
}

// TestExecInheritedFDNotPassed performs the leak: privsep, as root, is
// started with descriptor 7 open on a root-only file, and runs CMD as
// nobody. CMD must not get descriptor 7 (it would read the file through
// it), unless --keep-fd 7 asks for exactly that. The socket-activation
// variables still count only the placed descriptors.
func TestExecInheritedFDNotPassed(t *testing.T) {
	t.Parallel()
	testutil.NeedRoot(t, "a root-only file held by privsep, a command run as nobody")
	f := newExecFiles(t)
	// ls runs as a child of sh (":" comes after it), so it lists sh's
	// descriptors, not its own. Then sh tries to read descriptor 7.
	const show = `echo "${LISTEN_FDS--}"; ls /proc/$$/fd; :; echo; cat <&7`
	for _, tc := range []struct {
		name   string
		args   []string
		listen string
		want   []int
		leaks  bool // CMD may read the secret through 7
	}{
		{"no --open", nil, "-", []int{0, 1, 2}, false},
		{"--open 3 4", []string{"--open", f.a, "--open", f.b}, "2", []int{0, 1, 2, 3, 4}, false},
		{"--open 7 over the inherited 7", []string{"--open", "7=" + f.a}, "-", []int{0, 1, 2, 7}, false},
		{"--keep-fd 7", []string{"--keep-fd", "7"}, "-", []int{0, 1, 2, 7}, true},
		{"--open 3 4 --keep-fd 7", []string{"--open", f.a, "--open", f.b, "--keep-fd", "7"}, "2", []int{0, 1, 2, 3, 4, 7}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			secret := openFD7(t, f.secret) // its own offset
			args := append([]string{"exec", "--user", "nobody"}, tc.args...)
			args = append(args, "--", "sh", "-c", show)
			r := privsep(t, setups(inDir(f.dir), withFD7(secret)), args...)
			listen, rest, _ := strings.Cut(r.stdout, "\n")
			fds, read, _ := strings.Cut(rest, "\n\n")
			if listen != tc.listen {
				t.Errorf("LISTEN_FDS=%s, want %s", listen, tc.listen)
			}
			if got := fdList(t, fds); !slices.Equal(got, tc.want) {
				t.Errorf("the command has descriptors %v, want %v", got, tc.want)
			}
			if leaked := strings.Contains(read, secretData); leaked != tc.leaks {
				t.Errorf("the command read the root-only file through descriptor 7: %v, want %v (stdout %q)", leaked, tc.leaks, r.stdout)
			}
		})
	}
}

// TestExecKeepFDRefused: --keep-fd of 0 to 2, of a number privsep places, of
// a descriptor that is not open, or of a non-number is a usage error.
func TestExecKeepFDRefused(t *testing.T) {
	t.Parallel()
	f := newExecFiles(t)
	null := openFD7(t, os.DevNull)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--keep-fd", "2"}, `--keep-fd "2": not a descriptor number from 3`},
		{[]string{"--keep-fd", "x"}, `--keep-fd "x": not a descriptor number`},
		{[]string{"--keep-fd", "9"}, "--keep-fd 9: descriptor 9 is not open"},
		{[]string{"--open", "7=" + f.a, "--keep-fd", "7"}, "--keep-fd 7: descriptor 7 is where --open " + f.a + " goes"},
		{[]string{"--open", f.a, "--open", f.b, "--open", f.a, "--open", f.b, "--open", f.a, "--keep-fd", "7"}, "--keep-fd 7: descriptor 7 is where --open " + f.a + " goes"},
		{[]string{"--keep-fd", "7", "--keep-fd", "7"}, "--keep-fd 7 given twice"},
	} {
		args := append(append([]string{"exec"}, tc.args...), "--", "true")
		r := privsep(t, withFD7(null), args...)
		checkCode(t, r, exitExecFailed)
		checkStderrContains(t, r, tc.want)
	}
}

// passwdShell returns name's login shell from /etc/passwd.
func passwdShell(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Split(line, ":"); len(f) == 7 && f[0] == name {
			return f[6]
		}
	}
	return "/bin/sh"
}

// TestExecUserEnvironment: with --user, CMD sees the user's HOME, USER,
// LOGNAME and SHELL, not root's; the rest of the environment passes as it
// is; without --user nothing changes.
func TestExecUserEnvironment(t *testing.T) {
	t.Parallel()
	testutil.NeedRoot(t, "dropping to nobody")
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	const show = `echo "$HOME|$USER|$LOGNAME|$SHELL|$PRIVSEP_TEST_KEPT"`
	env := withEnv("HOME=/root", "USER=root", "LOGNAME=root", "SHELL=/bin/rootshell", "PRIVSEP_TEST_KEPT=kept")
	want := u.HomeDir + "|nobody|nobody|" + passwdShell(t, "nobody") + "|kept\n"
	for _, name := range []string{"nobody", u.Uid} {
		r := privsep(t, env, "exec", "--user", name, "--", "sh", "-c", show)
		checkCode(t, r, 0)
		checkStdout(t, r, want)
	}
	r := privsep(t, env, "exec", "--", "sh", "-c", show)
	checkCode(t, r, 0)
	checkStdout(t, r, "/root|root|root|/bin/rootshell|kept\n")

	// A uid with no passwd entry: its number as its name, HOME=/.
	const unknown = "43210"
	if _, err := user.LookupId(unknown); err == nil {
		t.Skipf("uid %s has a passwd entry", unknown)
	}
	r = privsep(t, env, "exec", "--user", unknown, "--", "sh", "-c", show)
	checkCode(t, r, 0)
	checkStdout(t, r, "/|"+unknown+"|"+unknown+"|/bin/sh|kept\n")
}

// TestExecOpenerGetsNoInheritedFD: a descriptor privsep inherited does not
// stay open in the opener it starts (the opener closes what leaked across
// its exec), even when --keep-fd passes it on to CMD.
func TestExecOpenerGetsNoInheritedFD(t *testing.T) {
	t.Parallel()
	f := newExecFiles(t)
	inherited := openFD7(t, f.b)
	// CMD runs as this user and lists the opener's descriptors, which
	// are still open: --keep-opener.
	r := privsep(t, withFD7(inherited), "exec", "--keep-opener", "--keep-fd", "7", "--open", f.a, "--",
		"sh", "-c", `for d in /proc/$PRIVSEP_OPENER_PID/fd/*; do readlink $d; done; echo; readlink /proc/$$/fd/7`)
	checkCode(t, r, 0)
	opener, mine, _ := strings.Cut(r.stdout, "\n\n")
	if strings.Contains(opener, f.b) || opener == "" {
		t.Errorf("the opener's descriptors: %q; want some, none of them %s", opener, f.b)
	}
	if strings.TrimSpace(mine) != f.b {
		t.Errorf("CMD's descriptor 7 is %q, want %s (--keep-fd 7)", mine, f.b)
	}
}

// TestExecPlacementRace: privsep places the descriptors with dup3 just
// before execve, onto numbers that may be ones the Go runtime holds (its
// epoll instance, its eventfd). Another thread that polls in that window
// gets EINVAL and the runtime dies ("fatal error: runtime: netpoll
// failed"), or, through the eventfd's number, writes into the placed file.
// It shows in about one run in a hundred, so the test makes many runs
// (PRIVSEP_STRESS sets how many).
func TestExecPlacementRace(t *testing.T) {
	t.Parallel()
	n := 400
	if s := os.Getenv("PRIVSEP_STRESS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 0 {
			t.Fatalf("PRIVSEP_STRESS=%q: want a number of runs", s)
		}
	}
	f := newExecFiles(t)
	args := []string{"exec"}
	for fd := 3; fd <= 16; fd++ {
		args = append(args, "--open", fmt.Sprintf("%d=%s", fd, f.a))
	}
	args = append(args, "--", "true")
	// More Ps make more threads that poll.
	env := withEnv("GOMAXPROCS=8")
	const workers = 4
	for w := range workers {
		t.Run(fmt.Sprintf("worker %d", w), func(t *testing.T) {
			t.Parallel()
			for i := w; i < n; i += workers {
				r := privsep(t, env, args...)
				if r.code != 0 || r.stderr != "" {
					t.Fatalf("run %d of %d: exit status %d, stderr %q; want 0 and nothing", i+1, n, r.code, r.stderr)
				}
			}
		})
	}
}
