//go:build linux

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/parent"
	"github.com/privsep-go/privsep/protocol"
)

const demoUsage = `Usage: privsep demo [--user USER]

Show privilege separation working, and failing safely, step by step: start
the opener as root; drop to USER (default nobody); fail to open /etc/shadow
directly; read a root-only file through the opener; be refused /etc/shadow
by the policy; be refused a symlink that escapes an allowed tree, by the
kernel; kill the opener and see the error it leaves. Each step prints what
it expects and what happened.

Run it as root for the whole demonstration; without root it says which
steps it cannot show and runs the others.

USER must exist and not be root (the demo shows dropping root's
privileges). Interrupted (SIGINT, SIGTERM, SIGHUP, or SIGPIPE when its
output is cut short, as by "| head"), the demo still removes its temporary
directory and the root-only file in it, and exits 128+signal.

Exit status: 0 if every step behaved as it claims, 1 otherwise, 2 on a
usage error (an unknown USER, or root), 128+N after signal N.

Options:
`

// demoStageFlag runs the demonstration proper in a child process: the steps
// drop privileges for good, and the parent process, still root, removes the
// demo's files afterwards.
const demoStageFlag = "--in-dir"

func demoCmd(args []string, stdout, stderr io.Writer) int {
	fs, parse := flagSet("demo", demoUsage, stdout, stderr)
	userName := fs.String("user", "nobody", "drop to `USER`")
	dir := fs.String(demoStageFlag[2:], "", "(internal) run the steps with the files in `DIR`")
	if ok, code := parse(args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(stderr, "privsep demo: takes no arguments")
		return exitUsage
	}
	if *dir != "" {
		return demoSteps(*dir, *userName, stdout)
	}
	if code := demoCheckUser(*userName, stderr); code != exitOK {
		return code
	}
	// The directory holds a root-only secret: catch what would end this
	// process before its clean-up (SIGPIPE: output cut short by "| head"),
	// pass it on to the steps, and remove the directory.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	defer signal.Stop(sigs)

	d, err := os.MkdirTemp("", "privsep-demo-")
	if err != nil {
		fmt.Fprintf(stderr, "privsep demo: %v\n", err)
		return exitFail
	}
	defer os.RemoveAll(d)
	if err := demoFiles(d); err != nil {
		fmt.Fprintf(stderr, "privsep demo: setting up %s: %v\n", d, err)
		return exitFail
	}
	// The steps run as USER after the drop, and may then not signal the
	// root opener; this process, still root, kills it on request: a line
	// "kill PID" on descriptor 3, answered on descriptor 4.
	reqR, reqW, ackR, ackW, err := demoPipes()
	if err != nil {
		fmt.Fprintf(stderr, "privsep demo: %v\n", err)
		return exitFail
	}
	cmd := exec.Command("/proc/self/exe", "demo", "--user", *userName, demoStageFlag, d)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.ExtraFiles = []*os.File{reqW, ackR}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "privsep demo: %v\n", err)
		return exitFail
	}
	reqW.Close()
	ackR.Close()
	go demoKiller(reqR, ackW, cmd.Process.Pid)
	got := make(chan syscall.Signal, 1)
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case sig := <-sigs:
			n := sig.(syscall.Signal)
			got <- n
			// SIGPIPE would not end the steps if they catch nothing:
			// they are ended for good.
			if n == syscall.SIGPIPE {
				n = syscall.SIGKILL
			}
			cmd.Process.Signal(n)
		case <-stopped:
		}
	}()
	err = cmd.Wait()
	reqR.Close()
	ackW.Close()
	select {
	case n := <-got:
		return 128 + int(n) // the deferred RemoveAll runs first
	default:
	}
	return demoStatus(err, stderr)
}

// demoPipes makes the steps' request pipe and the answer pipe.
func demoPipes() (reqR, reqW, ackR, ackW *os.File, err error) {
	if reqR, reqW, err = os.Pipe(); err != nil {
		return nil, nil, nil, nil, err
	}
	if ackR, ackW, err = os.Pipe(); err != nil {
		reqR.Close()
		reqW.Close()
		return nil, nil, nil, nil, err
	}
	return reqR, reqW, ackR, ackW, nil
}

// demoCheckUser refuses a user that cannot be dropped to: that is the
// command line's fault, said before anything runs rather than after every
// step ran around it.
func demoCheckUser(userName string, stderr io.Writer) int {
	cred, err := parent.LookupCredential(userName, "")
	if err != nil {
		fmt.Fprintf(stderr, "privsep demo: --user %s: %v\n", userName, err)
		return exitUsage
	}
	if cred.UID == 0 {
		fmt.Fprintf(stderr, "privsep demo: --user %s: is root (uid 0); the demo shows dropping root's privileges: choose an unprivileged user, such as nobody\n", userName)
		return exitUsage
	}
	return exitOK
}

// demoStatus turns how the steps ended into the demo's exit status.
func demoStatus(err error, stderr io.Writer) int {
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.Exited() {
			return ee.ExitCode()
		}
		// The steps died of SIGPIPE: the reader of their output went away
		// ("| head"), which needs no message; the directory goes as always.
		if ee != nil {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGPIPE {
				return 128 + int(syscall.SIGPIPE)
			}
		}
		fmt.Fprintf(stderr, "privsep demo: %v\n", err)
		return exitFail
	}
	return exitOK
}

// demoKiller serves the steps' requests to kill their opener: only a
// child of the steps' process, and only with SIGKILL.
func demoKiller(req io.Reader, ack io.Writer, stagePID int) {
	var pid int
	for {
		if _, err := fmt.Fscanf(req, "kill %d\n", &pid); err != nil {
			return
		}
		answer := "ok"
		if ppid, err := parentPID(pid); err != nil || ppid != stagePID {
			answer = "refused: not the demo's opener"
		} else if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			answer = err.Error()
		}
		fmt.Fprintln(ack, answer)
	}
}

func parentPID(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 2 {
		return 0, errors.New("malformed stat")
	}
	var ppid int
	_, err = fmt.Sscan(f[1], &ppid)
	return ppid, err
}

// demoFiles lays out the demo's files in d: a root-only secret, and a tree
// holding a symlink that points out of it at /etc/shadow.
func demoFiles(d string) error {
	if err := os.Chmod(d, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d, "secret.txt"), []byte("the opener read this file for us; only its owner may read it\n"), 0o600); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(d, "tree"), 0o755); err != nil {
		return err
	}
	return os.Symlink("/etc/shadow", filepath.Join(d, "tree", "escape"))
}

// demoStep prints one step and records whether it behaved as claimed.
type demoStep struct {
	w      io.Writer
	n      int
	failed int
}

func (s *demoStep) run(what string, f func() (string, bool)) {
	s.n++
	fmt.Fprintf(s.w, "\n%d. %s\n", s.n, what)
	got, ok := f()
	verdict := "as expected"
	if !ok {
		verdict = "NOT AS EXPECTED"
		s.failed++
	}
	fmt.Fprintf(s.w, "   -> %s\n   [%s]\n", got, verdict)
}

func (s *demoStep) skip(what, why string) {
	s.n++
	fmt.Fprintf(s.w, "\n%d. %s\n   -> skipped: %s\n", s.n, what, why)
}

func demoSteps(d, userName string, w io.Writer) int {
	ctx := context.Background()
	secret := filepath.Join(d, "secret.txt")
	escape := filepath.Join(d, "tree", "escape")
	root := os.Geteuid() == 0
	fmt.Fprintln(w, "privsep demo: privilege separation, step by step")
	if !root {
		fmt.Fprintln(w, "(not running as root: the privilege drop cannot be shown, and the \"root-only\" file is only yours)")
	}
	s := &demoStep{w: w}

	var op *parent.Opener
	rules := []string{secret, filepath.Join(d, "tree") + "/"}
	s.run(fmt.Sprintf("Start the opener as uid %d, with the policy %s", os.Geteuid(), strings.Join(rules, " and ")), func() (string, bool) {
		var err error
		op, err = parent.Start(ctx, parent.Config{Rules: rules})
		if err != nil {
			return err.Error(), false
		}
		return fmt.Sprintf("opener pid %d is ready (kernel containment with openat2: %v)", op.PID(), op.Openat2()), true
	})
	if op == nil {
		fmt.Fprintln(w, "\nresult: the opener did not start; nothing more to show")
		return exitFail
	}
	defer op.Close()

	demoDrop(s, root, userName)
	demoAsk(ctx, s, op, secret, escape)
	demoKill(s, op, secret, root, userName)

	fmt.Fprintln(w)
	if s.failed > 0 {
		fmt.Fprintf(w, "result: %d of %d steps did not behave as described\n", s.failed, s.n)
		return exitFail
	}
	fmt.Fprintf(w, "result: every step behaved as described\n")
	return exitOK
}

// demoSupervisorKill asks the root process that started the steps to kill
// pid, over descriptors 3 and 4.
func demoSupervisorKill(pid int) error {
	req, ack := os.NewFile(3, "demo-requests"), os.NewFile(4, "demo-answers")
	if _, err := fmt.Fprintf(req, "kill %d\n", pid); err != nil {
		return fmt.Errorf("asking the supervisor: %w", err)
	}
	var answer string
	if _, err := fmt.Fscanln(ack, &answer); err != nil {
		return fmt.Errorf("the supervisor did not answer: %w", err)
	}
	if answer != "ok" {
		return fmt.Errorf("the supervisor did not kill it: %s", answer)
	}
	return nil
}

func ownerOf(path string) int {
	fi, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid)
}

// demoDrop drops this process to userName, as root, and shows that it can
// no longer open /etc/shadow itself.
func demoDrop(s *demoStep, root bool, userName string) {
	if root {
		s.run("Drop this process to "+userName+": supplementary groups cleared, then gid, then uid; no_new_privs", func() (string, bool) {
			cred, err := parent.LookupCredential(userName, "")
			if err == nil {
				err = parent.DropPrivileges(cred)
			}
			if err == nil {
				_, err = parent.SetNoNewPrivs()
			}
			if err != nil {
				return err.Error(), false
			}
			r, e, sv := unix.Getresuid()
			dropped := e == cred.UID && r == cred.UID && sv == cred.UID
			// Try to get root back, and say what really happened.
			regain := "setuid(0) fails: " + fmt.Sprint(syscall.Setuid(0))
			if r2, e2, _ := unix.Getresuid(); e2 == 0 || r2 == 0 {
				regain, dropped = "setuid(0) succeeded: root is back, the drop did not hold", false
			}
			return fmt.Sprintf("now uid %d (real %d, saved %d), gid %d; %s", e, r, sv, os.Getegid(), regain), dropped
		})
		s.run("Open /etc/shadow directly, without the opener", func() (string, bool) {
			f, err := os.Open("/etc/shadow")
			if err == nil {
				f.Close()
				return "it opened: the drop did not work", false
			}
			return err.Error(), errors.Is(err, fs.ErrPermission)
		})
	} else {
		s.skip("Drop this process to "+userName, "needs root")
		s.skip("Open /etc/shadow directly, without the opener", "needs the drop to mean anything")
	}

}

// demoAsk reads the secret through the opener and is refused /etc/shadow
// by the policy and the escaping symlink by the kernel.
func demoAsk(ctx context.Context, s *demoStep, op *parent.Opener, secret, escape string) {
	s.run("Read "+secret+" (mode 0600, owner uid "+fmt.Sprint(ownerOf(secret))+") through the opener", func() (string, bool) {
		f, err := op.Open(ctx, secret, os.O_RDONLY, 0)
		if err != nil {
			return err.Error(), false
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		if err != nil {
			return err.Error(), false
		}
		return fmt.Sprintf("read %q", strings.TrimSpace(string(b))), true
	})
	s.run("Ask the opener for /etc/shadow, which no rule allows", func() (string, bool) {
		f, err := op.Open(ctx, "/etc/shadow", os.O_RDONLY, 0)
		if err == nil {
			f.Close()
			return "the opener opened it", false
		}
		return err.Error() + " (refused by the policy, before any open)", errors.Is(err, parent.ErrDenied)
	})
	s.run("Ask for "+escape+": inside the allowed tree, but a symlink to /etc/shadow", func() (string, bool) {
		f, err := op.Open(ctx, escape, os.O_RDONLY, 0)
		if err == nil {
			f.Close()
			return "the opener followed the symlink out of the tree", false
		}
		var re *parent.RefusedError
		ok := errors.As(err, &re) && re.Reason == protocol.ReasonEscape
		return err.Error() + " (the policy allowed the path; the kernel refused to leave the tree)", ok
	})
}

// demoKill kills the opener and shows the error it leaves.
func demoKill(s *demoStep, op *parent.Opener, secret string, root bool, userName string) {
	ctx, w := context.Background(), s.w
	s.run("Kill the opener with SIGKILL, then ask it for "+secret, func() (string, bool) {
		if err := syscall.Kill(op.PID(), syscall.SIGKILL); err != nil {
			// After the drop we may not signal the root opener: the demo's
			// root supervisor does it for us.
			if !root || !errors.Is(err, syscall.EPERM) {
				return err.Error(), false
			}
			fmt.Fprintf(w, "   (as %s this process may not signal the root opener: %v; the demo's root supervisor kills it)\n", userName, err)
			if err := demoSupervisorKill(op.PID()); err != nil {
				return err.Error(), false
			}
		}
		select {
		case <-op.Done():
		case <-time.After(5 * time.Second):
			return "the opener is still running 5 s later", false
		}
		_, err := op.Open(ctx, secret, os.O_RDONLY, 0)
		var ee *parent.ExitError
		return fmt.Sprint(err), errors.As(err, &ee)
	})

}
