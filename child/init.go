//go:build linux

package child

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/opener"
	"github.com/privsep-go/privsep/internal/trampoline"
	"github.com/privsep-go/privsep/protocol"
)

// Init turns the process into the opener when it was started as one by
// package parent, and then never returns: the process exits with the
// opener's status. Started as the trampoline of parent.Exec, it places
// the descriptors and execs the command instead. In any other process it
// returns at once and does nothing. Call it first thing in main (or in
// TestMain), before anything opens files or starts goroutines that the
// opener would not want.
func Init() {
	if trampoline.Is(os.Args) {
		os.Exit(trampoline.Main(os.Args[2:], os.Stderr))
	}
	if !IsOpener() {
		return
	}
	os.Exit(Main(os.Args[2]))
}

// IsOpener reports whether this process was started as an opener: the
// marker is on argv and in the environment.
func IsOpener() bool {
	return len(os.Args) == 3 && os.Args[1] == protocol.OpenerArg &&
		os.Getenv(protocol.OpenerEnvKey) == protocol.OpenerEnvValue
}

// Main runs the opener on the socket whose decimal descriptor number is
// fdArg and returns its exit status. Init calls it; it is exported for
// programs that dispatch on argv themselves.
func Main(fdArg string) int {
	log := newLogger()
	fd, err := strconv.Atoi(fdArg)
	if err != nil || fd < 3 {
		log.Error("bad invocation: the socket must be a descriptor number of 3 or more", "arg", fdArg)
		return protocol.ExitUsage
	}
	// One worker receives at a time (see "The receiving role" in
	// internal/opener); a second scheduler slot would only keep a second
	// thread spinning for work, measured as about half the opener's CPU per
	// request. Workers that stall in a system call still give the slot up.
	runtime.GOMAXPROCS(2)
	root, err := opener.PinRoot()
	if err != nil {
		log.Error("cannot start", "error", err)
		return protocol.ExitInternal
	}
	closeLeaked(log, root, fd)
	if err := checkSocket(fd); err != nil {
		unix.Close(root)
		log.Error("bad invocation", "fd", fd, "error", err)
		return protocol.ExitUsage
	}
	return opener.ServeProcess(log, fd, root)
}

// newLogger makes the opener's logger: JSON on stderr, which the parent
// reads and re-logs with its own timestamps.
//
// The timestamps are UTC. A time in the local zone makes the time package
// load the zone on the first log line, opening $TZ or /etc/localtime by
// path from "/": as root, after the handshake (the first line is often
// "ready"), and, since the time package opens it without O_CLOEXEC, as a
// descriptor without the flag for a moment. The opener opens nothing by
// path once it is serving.
func newLogger() hclog.Logger {
	level := hclog.Info
	if s := os.Getenv(protocol.LogLevelEnv); s != "" {
		if l := hclog.LevelFromString(s); l != hclog.NoLevel {
			level = l
		}
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       "opener",
		Level:      level,
		Output:     os.Stderr,
		JSONFormat: true,
		TimeFn:     func() time.Time { return time.Now().UTC() },
	})
}

// closeLeaked closes every descriptor above stderr, other than the socket,
// that survived exec. A descriptor opened after exec (by the Go runtime or a
// package initialiser) is close-on-exec, as Go opens everything; one without
// the flag came in from whoever started us, and the opener must hold nothing
// it did not ask for.
//
// The list comes from /proc/self/fd, resolved from the pinned root (root,
// which is close-on-exec and so survives this), with RESOLVE_NO_MAGICLINKS
// where openat2 exists ("self" is an ordinary procfs link).
func closeLeaked(log hclog.Logger, root, sock int) {
	names, err := listOwnFDs(root)
	if err != nil {
		log.Warn("cannot list descriptors to close leaked ones", "error", err)
		return
	}
	var closed []int
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || fd <= 2 || fd == sock {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC != 0 {
			continue // already closed (the directory we read), or ours
		}
		unix.Close(fd)
		closed = append(closed, fd)
	}
	if len(closed) > 0 {
		sort.Ints(closed)
		log.Info("closed descriptors inherited across exec", "fds", closed)
	}
}

// checkSocket verifies that fd is an AF_UNIX SOCK_SEQPACKET socket whose peer
// is our parent process, and makes it blocking.
func checkSocket(fd int) error {
	dom, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return fmt.Errorf("descriptor %d is not a socket: %w", fd, err)
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return fmt.Errorf("socket type of descriptor %d: %w", fd, err)
	}
	if dom != unix.AF_UNIX || typ != unix.SOCK_SEQPACKET {
		return fmt.Errorf("descriptor %d is a socket of domain %d type %d, want AF_UNIX SOCK_SEQPACKET", fd, dom, typ)
	}
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return fmt.Errorf("peer credentials of descriptor %d: %w", fd, err)
	}
	if int(cred.Pid) != os.Getppid() {
		return fmt.Errorf("the socket's peer is pid %d, not our parent %d", cred.Pid, os.Getppid())
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		return fmt.Errorf("making descriptor %d blocking: %w", fd, err)
	}
	return nil
}

// listOwnFDs lists the names in /proc/self/fd, resolved from root.
func listOwnFDs(root int) ([]string, error) {
	const dir = "proc/self/fd"
	flags := unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC
	fd, err := unix.Openat2(root, dir, &unix.OpenHow{Flags: uint64(flags), Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
	if err == unix.ENOSYS || err == unix.EPERM {
		fd, err = unix.Openat(root, dir, flags, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("opening /%s: %w", dir, err)
	}
	f := os.NewFile(uintptr(fd), "/"+dir)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("reading /%s: %w", dir, err)
	}
	return names, nil
}
