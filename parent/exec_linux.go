package parent

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"

	"github.com/privsep-go/privsep/internal/trampoline"
)

// The names of sd_listen_fds(3).
const (
	listenFDsEnv     = "LISTEN_FDS"
	listenPIDEnv     = "LISTEN_PID"
	listenFDNamesEnv = "LISTEN_FDNAMES"
)

// Exec replaces the process with the command cfg describes, as execve
// does, after applying cfg.Sandbox and with the descriptors of cfg.Files
// at their numbers: it returns only on failure. The pid stays the same.
//
// The descriptors cannot be put in place by this process: their numbers
// may be the Go runtime's own, which other threads use until execve. So
// Exec moves them out of the way and re-executes the running binary
// (/proc/self/exe), whose child.Init places them and execs the command:
// the binary must call child.Init first thing in main, as for [Start].
// The command gets descriptors 0, 1, 2, those placed and cfg.KeepFDs, and
// nothing else.
//
// A failure after Exec has re-executed itself is reported on standard
// error and ends the process with status 125 (126 if the command cannot
// be run, 127 if it is not found), after env(1).
func Exec(cfg ExecConfig) error {
	// Everything from here to execve runs on this one thread: the sandbox
	// covers every thread, and execve keeps only this one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread() // only if it fails
	srcs, targets, names, err := execPlan(cfg)
	if err != nil {
		return err
	}
	if cfg.Broker != nil && (cfg.Sandbox == nil || cfg.Sandbox.Credential == nil) {
		// A command left as root gains nothing from the broker, and the
		// filter needs the no_new_privs the drop comes with.
		return fmt.Errorf("privsep: exec %q: a broker needs Sandbox.Credential (run the command as another user)", cfg.Path)
	}
	if cfg.Sandbox != nil {
		if _, err := Sandbox(execSandbox(*cfg.Sandbox, cfg.Path)); err != nil {
			return err
		}
	}
	env := cfg.Env
	if env == nil {
		env = os.Environ()
	}
	env = environWithout(env, listenFDsEnv, listenPIDEnv, listenFDNamesEnv, OpenerFDEnv, OpenerPIDEnv)
	passed := len(srcs)
	if contiguousFrom3(targets) && passed > 0 {
		env = append(env,
			fmt.Sprintf("%s=%d", listenFDsEnv, passed),
			fmt.Sprintf("%s=%d", listenPIDEnv, os.Getpid()),
			listenFDNamesEnv+"="+strings.Join(names, ":"))
	}
	if cfg.Opener != nil {
		next := fdAbove(targets, cfg.KeepFDs)
		sock, err := cfg.Opener.File()
		if err != nil {
			return err
		}
		defer sock.Close()
		srcs, targets = append(srcs, sock), append(targets, next)
		env = append(env, fmt.Sprintf("%s=%d", OpenerFDEnv, next), fmt.Sprintf("%s=%d", OpenerPIDEnv, cfg.Opener.PID()))
	}
	brokerFD := -1
	if cfg.Broker != nil {
		// Placed above everything the command gets, and closed at its
		// execve: the trampoline uses it, the command never sees it.
		brokerFD = fdAbove(targets, cfg.KeepFDs)
		sock, err := cfg.Broker.File()
		if err != nil {
			return err
		}
		defer sock.Close()
		srcs, targets = append(srcs, sock), append(targets, brokerFD)
	}
	tramp, err := trampoline.Args(srcs, targets, cfg.KeepFDs, cfg.Path, cfg.Args)
	if err != nil {
		return err
	}
	if brokerFD >= 0 {
		tramp = slices.Insert(tramp, 2, trampoline.BrokerArg(brokerFD, cfg.Broker.PID()))
	}
	err = syscall.Exec("/proc/self/exe", tramp, env)
	return fmt.Errorf("privsep: re-executing itself to place the descriptors: %w", err)
}

// execPlan checks cfg and returns its files, their numbers and their
// names, in the order of the numbers.
func execPlan(cfg ExecConfig) (srcs []*os.File, targets []int, names []string, err error) {
	if len(cfg.Args) == 0 || !strings.HasPrefix(cfg.Path, "/") {
		return nil, nil, nil, fmt.Errorf("privsep: exec %q: want an absolute path and an argv", cfg.Path)
	}
	files := slices.Clone(cfg.Files)
	slices.SortStableFunc(files, func(a, b ExecFile) int { return a.FD - b.FD })
	placed := map[int]bool{}
	for _, f := range files {
		if f.File == nil || f.FD < 0 || placed[f.FD] {
			return nil, nil, nil, fmt.Errorf("privsep: exec: descriptor %d: given twice, negative or nil", f.FD)
		}
		placed[f.FD] = true
		srcs, targets, names = append(srcs, f.File), append(targets, f.FD), append(names, fdName(f.Name))
	}
	for _, n := range cfg.KeepFDs {
		open, inherited := trampoline.Inherited(n)
		switch {
		case n < 3 || placed[n]:
			return nil, nil, nil, fmt.Errorf("privsep: exec: kept descriptor %d: below 3, given twice or where a file goes", n)
		case !open || !inherited:
			return nil, nil, nil, fmt.Errorf("privsep: exec: kept descriptor %d: not open, or close-on-exec (not inherited)", n)
		}
		placed[n] = true
	}
	return srcs, targets, names, nil
}

// fdAbove returns the lowest descriptor number above 2 and above every
// number in targets and keep: where Exec puts one more descriptor without
// taking a number the command was promised.
func fdAbove(targets, keep []int) int {
	n := 3
	for _, t := range targets {
		n = max(n, t+1)
	}
	for _, t := range keep {
		n = max(n, t+1)
	}
	return n
}

// execSandbox is sb with the binary and path added to Landlock's
// read-only rules: the binary runs once more as the trampoline, then path.
func execSandbox(sb SandboxConfig, path string) SandboxConfig {
	if sb.Landlock == nil {
		return sb
	}
	ll := *sb.Landlock
	ll.ReadOnly = append(slices.Clone(ll.ReadOnly), path)
	if self, err := os.Executable(); err == nil {
		ll.ReadOnly = append(ll.ReadOnly, self)
	}
	sb.Landlock = &ll
	return sb
}

func contiguousFrom3(sorted []int) bool {
	for i, fd := range sorted {
		if fd != 3+i {
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
		if !slices.Contains(names, k) {
			out = append(out, kv)
		}
	}
	return out
}
