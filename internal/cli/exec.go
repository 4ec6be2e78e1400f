//go:build linux

package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/privsep-go/privsep/internal/trampoline"
	"github.com/privsep-go/privsep/parent"
)

// Exit statuses of privsep exec, after env(1) and chroot(1), so that CMD's
// own statuses stay unambiguous; the trampoline ends with the same ones.
const (
	exitExecFailed  = trampoline.ExitFailed   // privsep itself failed: usage, a refused --open, a failed drop
	exitCannotRun   = trampoline.ExitCannot   // CMD was found but could not be run
	exitCmdNotFound = trampoline.ExitNotFound // CMD was not found
	firstPassedFD   = 3
)

const execUsage = `Usage: privsep exec [--allow RULE]... [--allow-listen NET:ADDR]... [--policy FILE]...
                    [--listen [NAME=]NET:ADDR]... [--open [FD=][MODES:]PATH]...
                    [--user USER] [--group GROUP] [--keep-opener] [--broker] [--broker-only]
                    [--landlock] [--landlock-ro PATH]... [--landlock-rw PATH]...
                    [--landlock-bind PORT]... [--landlock-connect PORT]...
                    [--landlock-any-tcp] [--landlock-best-effort] [--keep-fd N]...
                    [--log-level LEVEL] -- CMD [ARG...]

Start an opener with the policy, open each --open PATH through it, give up
privileges and run CMD in this same process (execve), with the descriptors
in place. The classic use: a server that must read a root-only key but
should run as an unprivileged user:

  privsep exec --open 3=/etc/ssl/private/server.key --user www-data -- server --key-fd 3

In order: the opener starts (with this process's privileges); each --open
is opened through it; unless --keep-opener, the opener is closed and its
exit status checked; privileges are dropped to USER (supplementary groups
cleared, then gid, then uid); no_new_privs is set; with --landlock, Landlock
is applied; all of it is verified on every thread (regaining root and an
open outside the Landlock rules must fail); the descriptors are placed at
their numbers with close-on-exec cleared on exactly those; CMD is exec'd.

CMD gets descriptors 0, 1 and 2, the ones privsep placed, and nothing
else: a descriptor privsep itself inherited without close-on-exec is not
passed on. --keep-fd N (3 or more, repeatable) passes inherited descriptor
N on at the same number; it must be open in privsep and must not be a
number privsep places.

With --user, HOME, USER, LOGNAME and SHELL are set to the user's home
directory, name and login shell from the password database (SHELL from
/etc/passwd, /bin/sh if the user has no line there; a uid with no entry
at all gets HOME=/ and its number as USER and LOGNAME). The rest of the
environment is passed on as it is, except LISTEN_FDS, LISTEN_PID,
LISTEN_FDNAMES, PRIVSEP_OPENER_FD and PRIVSEP_OPENER_PID, which privsep
sets itself or removes.

--listen [NAME=]NET:ADDR asks the opener for a listening socket (tcp, tcp4,
tcp6, udp, udp4, udp6 or unix; ADDR as Go writes it, :443 or a path) and
passes it to CMD, so that a socket-activation-aware server runs
unprivileged on port 443. Sockets come first, from descriptor 3, in order;
then the --open files. NAME (default: the network) goes into
LISTEN_FDNAMES.

--open [FD=][MODES:]PATH opens PATH with MODES (r, w, rw, a, with c to
create; default r) and places it at FD; without FD, the next free number
after the sockets. With no --allow, --allow-listen or --policy, each --open
and --listen allows exactly itself; with rules given, the rules alone
decide.

When the descriptors start at 3 and are contiguous, LISTEN_FDS, LISTEN_PID
(this process's pid, which CMD keeps) and LISTEN_FDNAMES (each PATH's base
name) are set as sd_listen_fds(3) expects.

--landlock restricts CMD with Landlock. Files: it may read and execute
beneath /usr, /bin, /sbin, /lib, /lib32, /lib64 and /etc/ld.so.cache (so
that dynamically linked programs start), CMD itself and each --landlock-ro
PATH; read, write, create and remove beneath each --landlock-rw PATH; and
nothing else: everything else comes through the descriptors. TCP: it may
bind only each --landlock-bind PORT and connect only to each
--landlock-connect PORT (sockets passed with --listen are already bound);
--landlock-any-tcp leaves TCP open. It cannot connect to abstract unix
sockets made outside, nor signal processes outside (even of its own
user). A kernel that cannot apply all of this (Landlock ABI 6 is needed)
is an error, unless --landlock-best-effort, which applies what it can.
Each --landlock-* PATH or PORT option implies --landlock.

--keep-opener leaves the opener running and passes its socket to CMD, at
the next descriptor after the others, named by PRIVSEP_OPENER_FD (and
PRIVSEP_OPENER_PID); a Go program built on privsep picks it up with
parent.Inherited. The opener then logs straight to stderr (CMD's stderr),
as JSON lines, at --log-level.

--broker (needs --user) keeps the opener running and serves CMD's own
opens through it: right before execve a seccomp filter makes each open,
openat, openat2 and creat of CMD, its threads and its children wait for
the opener. A path the policy allows is opened by the opener exactly as an
--open would be (the same containment, checks and log), and the
descriptor becomes the call's result; any other call goes ahead with
CMD's own credentials, so CMD loses nothing it could open itself. It
grants, it does not confine: use --landlock for that. Linux 5.14 or newer
on amd64 or arm64; a 32-bit system call of CMD kills it (SIGSYS).

--broker-only is --broker that refuses (EACCES) every open it does not
serve, even one CMD could make itself, but serves read-only the
world-readable files beneath /usr/lib, /usr/lib64, /lib, /lib64 and
/etc/ld.so.cache, so that dynamically linked programs start. It is not a
sandbox either (io_uring, execve, inherited descriptors bypass it).

Exit status: 125 if privsep fails (usage, policy, a refused or failed
--open, the opener's exit status, a failed drop), 126 if CMD cannot be run,
127 if CMD is not found, else CMD's own status.

Options:
`

// execFlags are the options of privsep exec.
type execFlags struct {
	pf          policyFlags
	opens       []openSpec
	listens     []listenSpec
	user, group string
	ll          landlockFlags
	keepOpener  bool
	broker      bool
	brokerOnly  bool
	keepFDs     []int
	level       string
}

func (e *execFlags) register(fs *flag.FlagSet) {
	e.pf.register(fs)
	fs.Func("open", "open `[FD=][MODES:]PATH` through the opener for CMD; repeatable", repeated(&e.opens, parseOpenSpec))
	fs.Func("listen", "pass CMD a listening socket on `[NAME=]NET:ADDR`; repeatable", repeated(&e.listens, parseListenSpec))
	fs.StringVar(&e.user, "user", "", "run CMD as `USER` (a name or uid)")
	fs.StringVar(&e.group, "group", "", "with `GROUP` (a name or gid; default USER's primary group)")
	e.ll.register(fs)
	fs.BoolVar(&e.keepOpener, "keep-opener", false, "keep the opener running and pass its socket to CMD")
	fs.BoolVar(&e.broker, "broker", false, "serve CMD's own opens of what the policy allows through the opener (needs --user)")
	fs.BoolVar(&e.brokerOnly, "broker-only", false, "--broker, refusing every open it does not serve but the loader's world-readable files")
	fs.Func("keep-fd", "pass inherited descriptor `N` (3 or more) on to CMD at the same number; repeatable", repeated(&e.keepFDs, parseKeepFD))
	fs.StringVar(&e.level, "log-level", "error", "log `LEVEL`: trace, debug, info, warn, error, off")
}

// check refuses options that do not go together, numbers the descriptors
// and, with no rules given, makes the policy of --open and --listen alone.
func (e *execFlags) check() (hclog.Level, error) {
	lvl := hclog.LevelFromString(e.level)
	if lvl == hclog.NoLevel {
		return lvl, fmt.Errorf("unknown log level %q", e.level)
	}
	if e.group != "" && e.user == "" {
		return lvl, errors.New("--group needs --user")
	}
	e.broker = e.broker || e.brokerOnly
	if e.broker && e.user == "" {
		return lvl, errors.New("--broker needs --user: the filter needs no_new_privs, and CMD left as root gains nothing")
	}
	if e.broker && e.keepOpener {
		return lvl, errors.New("--broker and --keep-opener do not go together: the opener's socket is the broker's")
	}
	if (e.ll.anyTCP || e.ll.bestEffort) && !e.ll.on {
		return lvl, errors.New("--landlock-any-tcp and --landlock-best-effort need --landlock")
	}
	if err := numberFDs(e.listens, e.opens); err != nil {
		return lvl, err
	}
	if err := checkKeepFDs(e.keepFDs, e.listens, e.opens); err != nil {
		return lvl, err
	}
	if e.pf.empty() {
		e.pf.rules = impliedRules(e.opens)
		for _, l := range e.listens {
			e.pf.listens = append(e.pf.listens, l.network+":"+l.addr)
		}
		e.pf.listens = dedupeStrings(e.pf.listens)
	}
	return lvl, nil
}

// execFail reports a failure of privsep exec, with one prefix.
func execFail(stderr io.Writer, err error) int {
	msg := strings.TrimPrefix(err.Error(), "privsep: ")
	fmt.Fprintf(stderr, "privsep exec: %s\n", msg)
	return exitExecFailed
}

func execCmd(args []string, stdout, stderr io.Writer) int {
	fs, parse := flagSet("exec", execUsage, stdout, stderr)
	var e execFlags
	e.register(fs)
	if ok, code := parse(args); !ok {
		if code == exitUsage {
			return exitExecFailed
		}
		return code
	}
	argv := fs.Args()
	if len(argv) == 0 {
		return execFail(stderr, errors.New("no CMD given (see privsep exec --help)"))
	}
	lvl, err := e.check()
	if err != nil {
		return execFail(stderr, err)
	}
	pol, ok := e.pf.load("exec", stderr)
	if !ok {
		return exitExecFailed
	}
	cfg := parent.ExecConfig{Args: argv, Env: os.Environ(), Sandbox: &parent.SandboxConfig{}}
	if e.user != "" {
		cred, err := parent.LookupCredential(e.user, e.group)
		if err != nil {
			return execFail(stderr, err)
		}
		cfg.Sandbox.Credential = &cred
		cfg.Env = withUserEnviron(cfg.Env, cred.UID)
	}
	if cfg.Path, err = lookCmd(argv[0]); err != nil {
		fmt.Fprintf(stderr, "privsep exec: %v\n", err)
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return exitCmdNotFound
		}
		return exitCannotRun
	}
	if e.ll.on {
		ll := e.ll.config()
		cfg.Sandbox.Landlock = &ll
	}
	cfg.KeepFDs = e.keepFDs

	// Everything from here to execve runs on this one thread: the sandbox
	// covers every thread, execve keeps only this one, and a kept opener's
	// parent-death signal follows the thread that started it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread() // only if it fails
	start := parent.Config{Policy: pol, Logger: hclog.New(&hclog.LoggerOptions{Name: "privsep", Level: lvl, Output: stderr})}
	start.Broker, start.BrokerOnly = e.broker, e.brokerOnly
	if e.keepOpener || e.broker {
		start.ChildStderr = os.Stderr
	}
	if err := e.openAll(start, &cfg); err != nil {
		return execFail(stderr, err)
	}
	err = parent.Exec(cfg)
	var ue *parent.LandlockUnsupportedError
	if errors.As(err, &ue) && slices.Contains(ue.Missing, "IPPROTO_MPTCP") {
		// The one gap no kernel upgrade closes: say which flag to choose.
		return execFail(stderr, fmt.Errorf("%w: on linux/%s privsep cannot refuse MPTCP sockets, which Landlock's TCP rules do not cover; "+
			"choose --landlock-any-tcp to leave TCP unrestricted, or --landlock-best-effort to restrict TCP and leave MPTCP open", err, runtime.GOARCH))
	}
	return execFail(stderr, err)
}

// lookCmd is the absolute path of CMD, found as execvp(3) would.
func lookCmd(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return "", err
	}
	return filepath.Abs(path)
}

// openAll starts the opener, asks it for every --listen socket and --open
// file, in that order, into cfg.Files, and closes it, checking its exit
// status, unless --keep-opener, which passes it on in cfg.Opener.
func (e *execFlags) openAll(start parent.Config, cfg *parent.ExecConfig) error {
	ctx := context.Background()
	op, err := parent.Start(ctx, start)
	if err != nil {
		return err
	}
	for _, l := range e.listens {
		f, err := op.ListenFile(ctx, l.network, l.addr)
		if err != nil {
			op.Close()
			return err
		}
		cfg.Files = append(cfg.Files, parent.ExecFile{File: f, FD: l.fd, Name: l.name})
	}
	for _, o := range e.opens {
		f, err := op.Open(ctx, o.path, o.flags, 0o666)
		if err != nil {
			op.Close()
			return err
		}
		cfg.Files = append(cfg.Files, parent.ExecFile{File: f, FD: o.fd, Name: filepath.Base(o.path)})
	}
	if e.broker {
		cfg.Broker = op
		return nil
	}
	if e.keepOpener {
		cfg.Opener = op
		return nil
	}
	if err := op.Close(); err != nil {
		return fmt.Errorf("the opener did not end cleanly: %w", err)
	}
	return nil
}
