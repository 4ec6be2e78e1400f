//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/parent"
	"github.com/privsep-go/privsep/policy"
)

// Exit statuses of privsep exec, after env(1) and chroot(1), so that CMD's
// own statuses stay unambiguous.
const (
	exitExecFailed   = 125 // privsep itself failed: usage, a refused --open, a failed drop
	exitCannotRun    = 126 // CMD was found but could not be run
	exitCmdNotFound  = 127 // CMD was not found
	firstPassedFD    = 3
	listenFDsEnv     = "LISTEN_FDS"
	listenPIDEnv     = "LISTEN_PID"
	listenFDNamesEnv = "LISTEN_FDNAMES"
)

const execUsage = `Usage: privsep exec [--allow RULE]... [--allow-listen NET:ADDR]... [--policy FILE]...
                    [--listen [NAME=]NET:ADDR]... [--open [FD=][MODES:]PATH]...
                    [--user USER] [--group GROUP] [--keep-opener]
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
parent.Inherited. The opener then logs straight to stderr.

Exit status: 125 if privsep fails (usage, policy, a refused or failed
--open, the opener's exit status, a failed drop), 126 if CMD cannot be run,
127 if CMD is not found, else CMD's own status.

Options:
`

// landlockSystemDirs stay readable and executable under --landlock, those
// of them that exist.
var landlockSystemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc/ld.so.cache"}

// landlockFlags are the --landlock options.
type landlockFlags struct {
	on                 bool
	ro, rw             []string
	bind, connect      []uint16
	anyTCP, bestEffort bool
}

func (l *landlockFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&l.on, "landlock", false, "restrict CMD with Landlock: files, TCP, abstract sockets, signals")
	path := func(dst *[]string) func(string) error {
		return func(s string) error {
			if !filepath.IsAbs(s) {
				return fmt.Errorf("%q is not an absolute path", s)
			}
			*dst, l.on = append(*dst, s), true
			return nil
		}
	}
	port := func(dst *[]uint16) func(string) error {
		return func(s string) error {
			n, err := strconv.ParseUint(s, 10, 16)
			if err != nil {
				return fmt.Errorf("%q is not a TCP port (0 to 65535)", s)
			}
			*dst, l.on = append(*dst, uint16(n)), true
			return nil
		}
	}
	fs.Func("landlock-ro", "with --landlock, let CMD read and execute beneath `PATH` too; repeatable", path(&l.ro))
	fs.Func("landlock-rw", "with --landlock, let CMD read, write, create and remove beneath `PATH`; repeatable", path(&l.rw))
	fs.Func("landlock-bind", "with --landlock, let CMD bind TCP `PORT`; repeatable", port(&l.bind))
	fs.Func("landlock-connect", "with --landlock, let CMD connect to TCP `PORT`; repeatable", port(&l.connect))
	fs.BoolVar(&l.anyTCP, "landlock-any-tcp", false, "with --landlock, leave TCP unrestricted")
	fs.BoolVar(&l.bestEffort, "landlock-best-effort", false, "with --landlock, apply what the kernel can and go on")
}

// config is the Landlock configuration for CMD at path.
func (l *landlockFlags) config(path string) parent.LandlockConfig {
	// CMD, and this binary, which runs once more as the trampoline.
	var ro []string
	for _, d := range landlockSystemDirs {
		if _, err := os.Stat(d); err == nil {
			ro = append(ro, d)
		}
	}
	ro = append(ro, path)
	if self, err := os.Executable(); err == nil {
		ro = append(ro, self)
	}
	return parent.LandlockConfig{
		ReadOnly:   append(ro, l.ro...),
		ReadWrite:  l.rw,
		BindTCP:    l.bind,
		ConnectTCP: l.connect,
		AnyTCP:     l.anyTCP,
		BestEffort: l.bestEffort,
	}
}

// maxPassedFD is the highest descriptor number a process may have.
func maxPassedFD() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<20 {
		return 1 << 20
	}
	return int(rl.Cur) - 1
}

// listenSpec is one --listen.
type listenSpec struct {
	name, network, addr string
	fd                  int
}

func parseListenSpec(s string) (listenSpec, error) {
	l := listenSpec{fd: -1}
	rest := s
	if i := strings.IndexByte(s, '='); i > 0 && !strings.Contains(s[:i], ":") {
		l.name, rest = s[:i], s[i+1:]
	}
	r, err := policy.ParseListen(rest)
	if err != nil {
		return l, fmt.Errorf("--listen %q: %w", s, err)
	}
	l.network, l.addr = r.Network, r.Addr
	if l.name == "" {
		l.name = l.network
	}
	return l, nil
}

// openSpec is one --open.
type openSpec struct {
	fd    int // -1 until numbered
	modes string
	path  string
	flags int
}

func parseOpenSpec(s string) (openSpec, error) {
	o := openSpec{fd: -1, modes: "r"}
	rest := s
	if i := strings.IndexByte(s, '='); i > 0 && !strings.Contains(s[:i], "/") {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 || n > maxPassedFD() {
			return o, fmt.Errorf("--open %q: %q is not a descriptor number from 0 to %d (RLIMIT_NOFILE)", s, s[:i], maxPassedFD())
		}
		o.fd, rest = n, s[i+1:]
	}
	r, err := policy.ParseRule(rest)
	if err != nil {
		return o, fmt.Errorf("--open %q: %w", s, err)
	}
	if r.Tree {
		return o, fmt.Errorf("--open %q: a path to open, not a tree", s)
	}
	o.path, o.modes = r.Path, r.Modes.String()
	switch {
	case r.Modes&policy.Read != 0 && r.Modes&(policy.Write|policy.Append) != 0:
		o.flags = os.O_RDWR
	case r.Modes&(policy.Write|policy.Append) != 0:
		o.flags = os.O_WRONLY
	case r.Modes&policy.Read != 0:
		o.flags = os.O_RDONLY
	default:
		return o, fmt.Errorf("--open %q: modes %q open nothing (want r, w, rw or a)", s, o.modes)
	}
	if r.Modes&policy.Append != 0 {
		o.flags |= os.O_APPEND
	}
	if r.Modes&policy.Create != 0 {
		o.flags |= os.O_CREATE
	}
	return o, nil
}

func execCmd(args []string, stdout, stderr io.Writer) int {
	fs, parse := flagSet("exec", execUsage, stdout, stderr)
	var pf policyFlags
	pf.register(fs)
	var opens []openSpec
	fs.Func("open", "open `[FD=][MODES:]PATH` through the opener for CMD; repeatable", func(s string) error {
		o, err := parseOpenSpec(s)
		if err == nil {
			opens = append(opens, o)
		}
		return err
	})
	var listens []listenSpec
	fs.Func("listen", "pass CMD a listening socket on `[NAME=]NET:ADDR`; repeatable", func(s string) error {
		l, err := parseListenSpec(s)
		if err == nil {
			listens = append(listens, l)
		}
		return err
	})
	userName := fs.String("user", "", "run CMD as `USER` (a name or uid)")
	groupName := fs.String("group", "", "with `GROUP` (a name or gid; default USER's primary group)")
	var ll landlockFlags
	ll.register(fs)
	keepOpener := fs.Bool("keep-opener", false, "keep the opener running and pass its socket to CMD")
	var keepFDs []int
	fs.Func("keep-fd", "pass inherited descriptor `N` (3 or more) on to CMD at the same number; repeatable", func(s string) error {
		n, err := parseKeepFD(s)
		if err == nil {
			keepFDs = append(keepFDs, n)
		}
		return err
	})
	level := fs.String("log-level", "error", "log `LEVEL`: trace, debug, info, warn, error, off")
	if ok, code := parse(args); !ok {
		if code == exitUsage {
			return exitExecFailed
		}
		return code
	}
	fail := func(format string, a ...any) int {
		msg := strings.TrimPrefix(fmt.Sprintf(format, a...), "privsep: ")
		fmt.Fprintf(stderr, "privsep exec: %s\n", msg)
		return exitExecFailed
	}
	argv := fs.Args()
	if len(argv) == 0 {
		return fail("no CMD given (see privsep exec --help)")
	}
	lvl := hclog.LevelFromString(*level)
	if lvl == hclog.NoLevel {
		return fail("unknown log level %q", *level)
	}
	if *groupName != "" && *userName == "" {
		return fail("--group needs --user")
	}
	if (ll.anyTCP || ll.bestEffort) && !ll.on {
		return fail("--landlock-any-tcp and --landlock-best-effort need --landlock")
	}
	if err := numberFDs(listens, opens); err != nil {
		return fail("%v", err)
	}
	if err := checkKeepFDs(keepFDs, listens, opens); err != nil {
		return fail("%v", err)
	}
	if pf.empty() {
		pf.rules = impliedRules(opens)
		for _, l := range listens {
			pf.listens = append(pf.listens, l.network+":"+l.addr)
		}
		pf.listens = dedupeStrings(pf.listens)
	}
	pol, ok := pf.load("exec", stderr)
	if !ok {
		return exitExecFailed
	}
	var cred parent.Credential
	var userEnv []string
	if *userName != "" {
		var err error
		if cred, err = parent.LookupCredential(*userName, *groupName); err != nil {
			return fail("%v", err)
		}
		userEnv = userEnviron(cred.UID)
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		fmt.Fprintf(stderr, "privsep exec: %v\n", err)
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return exitCmdNotFound
		}
		return exitCannotRun
	}
	if path, err = filepath.Abs(path); err != nil {
		return fail("%v", err)
	}

	// Everything from here to execve runs on this one thread: the sandbox
	// covers every thread, and execve keeps only this one.
	runtime.LockOSThread()

	cfg := parent.Config{Policy: pol, Logger: hclog.New(&hclog.LoggerOptions{Name: "privsep", Level: lvl, Output: stderr})}
	if *keepOpener {
		cfg.ChildStderr = os.Stderr
	}
	ctx := context.Background()
	op, err := parent.Start(ctx, cfg)
	if err != nil {
		return fail("%v", err)
	}
	// The descriptors to pass, in order: sockets, then files.
	var files []*os.File
	var targets []int
	var names []string
	for _, l := range listens {
		f, err := op.ListenFile(ctx, l.network, l.addr)
		if err != nil {
			op.Close()
			return fail("%v", err)
		}
		files, targets, names = append(files, f), append(targets, l.fd), append(names, fdName(l.name))
	}
	for _, o := range opens {
		f, err := op.Open(ctx, o.path, o.flags, 0o666)
		if err != nil {
			op.Close()
			return fail("%v", err)
		}
		files, targets, names = append(files, f), append(targets, o.fd), append(names, fdName(filepath.Base(o.path)))
	}
	passed := len(files)
	if !*keepOpener {
		if err := op.Close(); err != nil {
			return fail("the opener did not end cleanly: %v", err)
		}
	}
	// One verified sequence: groups, gid, uid, no_new_privs, Landlock.
	var sb parent.SandboxConfig
	if *userName != "" {
		sb.Credential = &cred
	}
	if ll.on {
		cfg := ll.config(path)
		sb.Landlock = &cfg
	}
	if _, err := parent.Sandbox(sb); err != nil {
		var ue *parent.LandlockUnsupportedError
		if errors.As(err, &ue) && slices.Contains(ue.Missing, "IPPROTO_MPTCP") {
			// The one gap no kernel upgrade closes: say which flag to choose.
			return fail("%v: on linux/%s privsep cannot refuse MPTCP sockets, which Landlock's TCP rules do not cover; "+
				"choose --landlock-any-tcp to leave TCP unrestricted, or --landlock-best-effort to restrict TCP and leave MPTCP open", err, runtime.GOARCH)
		}
		return fail("%v", err)
	}

	env := environWithout(os.Environ(), listenFDsEnv, listenPIDEnv, listenFDNamesEnv, parent.OpenerFDEnv, parent.OpenerPIDEnv)
	if userEnv != nil {
		env = append(environWithout(env, "HOME", "USER", "LOGNAME", "SHELL"), userEnv...)
	}
	srcs := files
	if *keepOpener {
		next := firstPassedFD
		for _, t := range append(slices.Clone(targets), keepFDs...) {
			if t >= next {
				next = t + 1
			}
		}
		sock, err := op.File()
		if err != nil {
			return fail("%v", err)
		}
		srcs = append(srcs, sock)
		targets = append(targets, next)
		env = append(env, fmt.Sprintf("%s=%d", parent.OpenerFDEnv, next), fmt.Sprintf("%s=%d", parent.OpenerPIDEnv, op.PID()))
	}
	if contiguousFrom3(targets[:passed]) && passed > 0 {
		env = append(env,
			fmt.Sprintf("%s=%d", listenFDsEnv, passed),
			fmt.Sprintf("%s=%d", listenPIDEnv, os.Getpid()),
			listenFDNamesEnv+"="+strings.Join(namesByFD(targets[:passed], names), ":"))
	}
	// The descriptors cannot be put in place here: their numbers may be
	// the Go runtime's own (its epoll, its eventfd), which other threads
	// keep using until execve. So this process execs itself as a
	// trampoline, with the descriptors at numbers above every target;
	// before its runtime opens anything, it moves them into place and
	// execs CMD. The pid stays the same throughout.
	tramp, err := trampolineArgs(srcs, targets, keepFDs, path, argv)
	if err != nil {
		return fail("%v", err)
	}
	err = syscall.Exec("/proc/self/exe", tramp, env)
	return fail("re-executing itself to place the descriptors: %v", err)
}

// execTrampolineArg is argv[1] of privsep re-executing itself to place
// descriptors and exec CMD:
// [privsep, ARG, SRC:DST..., keep:N..., --, PATH, ARGV...].
const execTrampolineArg = "-privsep-exec-trampoline"

// keepPrefix marks a trampoline argument naming a --keep-fd descriptor.
const keepPrefix = "keep:"

// trampolineArgs moves each source above every target, without
// close-on-exec, and returns the trampoline's argv.
func trampolineArgs(srcs []*os.File, targets, keep []int, path string, argv []string) ([]string, error) {
	top := firstPassedFD
	for _, t := range targets {
		if t >= top {
			top = t + 1
		}
	}
	args := []string{"privsep", execTrampolineArg}
	for _, n := range keep {
		args = append(args, keepPrefix+strconv.Itoa(n))
	}
	for i, f := range srcs {
		fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD, top) // no close-on-exec: it must survive one execve
		if err != nil {
			return nil, fmt.Errorf("moving the descriptor for %s above %d: %w", f.Name(), top, err)
		}
		top = fd + 1
		args = append(args, fmt.Sprintf("%d:%d", fd, targets[i]))
	}
	return append(append(args, "--", path), argv...), nil
}

// trampoline is the second half of privsep exec, run first thing in main:
// it places the descriptors, makes sure no other descriptor above 2
// survives execve, and execs CMD. Nothing in this fresh process has opened
// a descriptor the moves could clobber (the runtime's first ones are
// close-on-exec files it opens at start, above the targets or not yet used
// again before execve).
func trampoline(args []string, stderr io.Writer) int {
	var moves [][2]int
	keep := []int{0, 1, 2}
	for len(args) > 0 && args[0] != "--" {
		if n, ok := strings.CutPrefix(args[0], keepPrefix); ok {
			fd, err := strconv.Atoi(n)
			if err != nil || fd < firstPassedFD {
				fmt.Fprintf(stderr, "privsep exec: trampoline: bad kept descriptor %q\n", args[0])
				return exitExecFailed
			}
			keep = append(keep, fd)
			args = args[1:]
			continue
		}
		var src, dst int
		if _, err := fmt.Sscanf(args[0], "%d:%d", &src, &dst); err != nil {
			fmt.Fprintf(stderr, "privsep exec: trampoline: bad move %q\n", args[0])
			return exitExecFailed
		}
		moves = append(moves, [2]int{src, dst})
		args = args[1:]
	}
	if len(args) < 3 {
		fmt.Fprintln(stderr, "privsep exec: trampoline: no command")
		return exitExecFailed
	}
	path, argv := args[1], args[2:]
	for _, m := range moves {
		if err := unix.Dup3(m[0], m[1], 0); err != nil {
			fmt.Fprintf(stderr, "privsep exec: placing descriptor %d: %v\n", m[1], err)
			return exitExecFailed
		}
		keep = append(keep, m[1])
	}
	// Everything else goes at execve: what privsep inherited without
	// close-on-exec, and the temporary copies above.
	if err := cloexecAllBut(keep); err != nil {
		fmt.Fprintf(stderr, "privsep exec: %v\n", err)
		return exitExecFailed
	}
	err := syscall.Exec(path, argv, os.Environ())
	fmt.Fprintf(stderr, "privsep exec: %s: %v\n", argv[0], err)
	if errors.Is(err, syscall.ENOENT) {
		return exitCmdNotFound
	}
	return exitCannotRun
}

// cloexecAllBut marks every descriptor not in keep close-on-exec, so that
// execve closes them all.
//
// It marks rather than closes: the trampoline is a Go program, and its
// runtime has descriptors of its own open (its epoll, its eventfd) that
// other threads may use until execve. Closing them under it could break
// the runtime, or let one of its threads use a number just reused; marked,
// they stay usable and still go at execve, with everything else.
func cloexecAllBut(keep []int) error {
	keep = slices.Clone(keep)
	slices.Sort(keep)
	lo := 0
	for _, k := range append(keep, -1) {
		hi := k - 1
		if k < 0 {
			hi = math.MaxInt32 // to the end of the table
		}
		if hi >= lo {
			if err := cloexecRange(lo, hi); err != nil {
				return err
			}
		}
		if k >= lo {
			lo = k + 1
		}
	}
	return nil
}

// cloexecRange marks descriptors lo to hi close-on-exec, with close_range(2)
// where the kernel has CLOSE_RANGE_CLOEXEC (5.11), else one by one up to
// the highest number this process may have.
func cloexecRange(lo, hi int) error {
	err := unix.CloseRange(uint(lo), uint(hi), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	if err != unix.ENOSYS && err != unix.EINVAL {
		return fmt.Errorf("marking descriptors %d to %d close-on-exec: close_range: %w", lo, hi, err)
	}
	hi = min(hi, maxPassedFD())
	for fd := lo; fd <= hi; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && err != unix.EBADF {
			return fmt.Errorf("marking descriptor %d close-on-exec: %w", fd, err)
		}
	}
	return nil
}

// parseKeepFD parses a --keep-fd number: an open descriptor from 3 up that
// this process inherited, that is, one without close-on-exec (everything Go
// opens has it).
func parseKeepFD(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < firstPassedFD || n > maxPassedFD() {
		return 0, fmt.Errorf("--keep-fd %q: not a descriptor number from %d to %d (0, 1 and 2 are always passed)", s, firstPassedFD, maxPassedFD())
	}
	flags, err := unix.FcntlInt(uintptr(n), unix.F_GETFD, 0)
	if err != nil {
		return 0, fmt.Errorf("--keep-fd %d: descriptor %d is not open", n, n)
	}
	if flags&unix.FD_CLOEXEC != 0 {
		return 0, fmt.Errorf("--keep-fd %d: descriptor %d is privsep's own, not one it inherited", n, n)
	}
	return n, nil
}

// checkKeepFDs refuses a --keep-fd number that privsep places a descriptor
// at, and one given twice.
func checkKeepFDs(keep []int, listens []listenSpec, opens []openSpec) error {
	placed := map[int]string{}
	for _, l := range listens {
		placed[l.fd] = "--listen " + l.network + ":" + l.addr
	}
	for _, o := range opens {
		placed[o.fd] = "--open " + o.path
	}
	seen := map[int]bool{}
	for _, n := range keep {
		if what, ok := placed[n]; ok {
			return fmt.Errorf("--keep-fd %d: descriptor %d is where %s goes", n, n, what)
		}
		if seen[n] {
			return fmt.Errorf("--keep-fd %d given twice", n)
		}
		seen[n] = true
	}
	return nil
}

// userEnviron returns HOME, USER, LOGNAME and SHELL for uid, from the
// password database: os/user gives the name and home, /etc/passwd the
// shell (os/user has no field for it). A uid with no entry gets HOME=/ and
// its number as its name; a user with no /etc/passwd line (from NSS
// elsewhere) gets /bin/sh.
func userEnviron(uid int) []string {
	id := strconv.Itoa(uid)
	name, home, shell := id, "/", "/bin/sh"
	if u, err := user.LookupId(id); err == nil {
		name, home = u.Username, u.HomeDir
		if home == "" {
			home = "/"
		}
	}
	if data, err := os.ReadFile("/etc/passwd"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Split(line, ":")
			if len(f) == 7 && f[0] == name && f[2] == id && f[6] != "" {
				shell = f[6]
				break
			}
		}
	}
	return []string{"HOME=" + home, "USER=" + name, "LOGNAME=" + name, "SHELL=" + shell}
}

// namesByFD orders LISTEN_FDNAMES by descriptor number, as sd_listen_fds
// numbers them.
func namesByFD(fds []int, names []string) []string {
	idx := make([]int, len(fds))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return fds[idx[a]] < fds[idx[b]] })
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = names[j]
	}
	return out
}

// numberFDs numbers the descriptors to pass: --open numbers as given, then
// the --listen sockets and the unnumbered --open files, in that order,
// from the next free number from 3. A number given twice is an error.
func numberFDs(listens []listenSpec, opens []openSpec) error {
	used := map[int]bool{}
	for _, o := range opens {
		if o.fd >= 0 {
			if used[o.fd] {
				return fmt.Errorf("descriptor %d given twice", o.fd)
			}
			used[o.fd] = true
		}
	}
	next := firstPassedFD
	take := func() int {
		for used[next] {
			next++
		}
		used[next] = true
		return next
	}
	for i := range listens {
		listens[i].fd = take()
	}
	for i := range opens {
		if opens[i].fd < 0 {
			opens[i].fd = take()
		}
	}
	return nil
}

func dedupeStrings(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func contiguousFrom3(fds []int) bool {
	s := append([]int(nil), fds...)
	sort.Ints(s)
	for i, fd := range s {
		if fd != firstPassedFD+i {
			return false
		}
	}
	return true
}

// fdName is a LISTEN_FDNAMES name, with what the format cannot carry
// replaced.
func fdName(name string) string {
	n := []byte(name)
	for i, c := range n {
		if c == ':' || c < ' ' || c >= 0x7f {
			n[i] = '_'
		}
	}
	if len(n) > 255 {
		n = n[:255]
	}
	return string(n)
}

func environWithout(env []string, names ...string) []string {
	out := env[:0:0]
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			if k == n {
				drop = true
			}
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

// impliedRules makes the policy of --open alone: one exact rule per path,
// with the union of the modes it is opened with.
func impliedRules(opens []openSpec) []string {
	var order []string
	modes := map[string]policy.Mode{}
	for _, o := range opens {
		r, _ := policy.ParseRule(o.modes + ":" + o.path)
		if _, ok := modes[o.path]; !ok {
			order = append(order, o.path)
		}
		modes[o.path] |= r.Modes
	}
	rules := make([]string, len(order))
	for i, p := range order {
		rules[i] = modes[p].String() + ":" + p
	}
	return rules
}
