package trampoline

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Exit statuses, after env(1) and chroot(1), so that the command's own
// statuses stay unambiguous.
const (
	ExitFailed   = 125 // the trampoline (or what ran before it) failed
	ExitCannot   = 126 // the command was found but could not be run
	ExitNotFound = 127 // the command was not found
)

// Arg is argv[1] of the binary re-executing itself as the trampoline:
// [privsep, Arg, keep:N..., SRC:DST..., --, PATH, ARGV...].
const Arg = "-privsep-exec-trampoline"

// keepPrefix marks a trampoline argument naming a kept descriptor.
const keepPrefix = "keep:"

// BrokerPrefix marks the trampoline argument "broker:N:PID": the move
// whose target is N is the socket of the opener PID, over which the
// trampoline hands the opener its seccomp listener (privsep exec --broker)
// right before execve. The command does not get it.
const BrokerPrefix = "broker:"

// BrokerArg is the trampoline argument for the socket at fd of the opener
// pid.
func BrokerArg(fd, pid int) string { return fmt.Sprintf("%s%d:%d", BrokerPrefix, fd, pid) }

// parseBroker parses the rest of a BrokerPrefix argument.
func parseBroker(s string) (fd, pid int, err error) {
	a, b, ok := strings.Cut(s, ":")
	fd, err1 := strconv.Atoi(a)
	pid, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || fd < 3 || pid <= 0 {
		return 0, 0, fmt.Errorf("bad broker argument %q", BrokerPrefix+s)
	}
	return fd, pid, nil
}

// Is reports whether argv is that of a trampoline.
func Is(argv []string) bool { return len(argv) > 1 && argv[1] == Arg }

// MaxFD is the highest descriptor number this process may have.
func MaxFD() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<20 {
		return 1 << 20
	}
	return int(rl.Cur) - 1
}

// Inherited reports whether fd is open in this process and, if so,
// whether it came in without close-on-exec (everything Go opens has it):
// only such a descriptor survives the re-exec into the trampoline.
func Inherited(fd int) (open, inherited bool) {
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		return false, false
	}
	return true, flags&unix.FD_CLOEXEC == 0
}

// Args moves a copy of each source above every target (and 2), without
// close-on-exec, and returns the trampoline's argv: srcs[i] goes to
// targets[i], each descriptor in keep stays where it is, and PATH runs
// with argv. The copies are this process's until it execs; on an error
// the ones made so far are closed.
func Args(srcs []*os.File, targets, keep []int, path string, argv []string) ([]string, error) {
	if len(srcs) != len(targets) {
		return nil, fmt.Errorf("%d descriptors for %d numbers", len(srcs), len(targets))
	}
	top := 3
	for _, t := range targets {
		if t >= top {
			top = t + 1
		}
	}
	args := []string{"privsep", Arg}
	for _, n := range keep {
		args = append(args, keepPrefix+strconv.Itoa(n))
	}
	var made []int
	for i, f := range srcs {
		fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD, top) // no close-on-exec: it must survive one execve
		if err != nil {
			for _, m := range made {
				unix.Close(m)
			}
			return nil, fmt.Errorf("moving the descriptor for %s above %d: %w", f.Name(), top, err)
		}
		made = append(made, fd)
		top = fd + 1
		args = append(args, fmt.Sprintf("%d:%d", fd, targets[i]))
	}
	return append(append(args, "--", path), argv...), nil
}

// Main is the trampoline, given the arguments after Arg: it places the
// descriptors, makes sure no other descriptor above 2 survives execve, and
// execs the command. It returns only on failure, with the exit status,
// having said why on stderr. Nothing in this fresh process has opened a
// descriptor the moves could clobber (the runtime's first ones are
// close-on-exec files it opens at start, above the targets or not used
// again before execve).
func Main(args []string, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case watchLaunchArg:
			return launchWatcher()
		case watchArg:
			return watch()
		}
	}
	moves, keep, rest, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "privsep exec: trampoline: %v\n", err)
		return ExitFailed
	}
	brokerFD, openerPID := -1, 0
	for _, a := range args {
		if a == "--" {
			break
		}
		if n, ok := strings.CutPrefix(a, BrokerPrefix); ok {
			brokerFD, openerPID, _ = parseBroker(n) // parseArgs checked it
		}
	}
	path, argv := rest[0], rest[1:]
	for _, m := range moves {
		if err := unix.Dup3(m[0], m[1], 0); err != nil {
			fmt.Fprintf(stderr, "privsep exec: placing descriptor %d: %v\n", m[1], err)
			return ExitFailed
		}
		if m[1] != brokerFD {
			keep = append(keep, m[1])
		}
	}
	// Everything else goes at execve: what the first half inherited
	// without close-on-exec, and the temporary copies above.
	if err := cloexecAllBut(keep); err != nil {
		fmt.Fprintf(stderr, "privsep exec: %v\n", err)
		return ExitFailed
	}
	if brokerFD >= 0 {
		// The last thing before execve: from here every open of this
		// process waits for the opener.
		if err := handOver(brokerFD, openerPID, stderr); err != nil {
			fmt.Fprintf(stderr, "privsep exec: --broker: %v\n", err)
			return ExitFailed
		}
	}
	err = syscall.Exec(path, argv, os.Environ())
	fmt.Fprintf(stderr, "privsep exec: %s: %v\n", argv[0], err)
	if errors.Is(err, syscall.ENOENT) {
		return ExitNotFound
	}
	return ExitCannot
}

// parseArgs splits the trampoline's arguments into the moves (src, dst),
// the descriptors to keep (0, 1, 2 and each keep:N) and [PATH, ARGV...].
func parseArgs(args []string) (moves [][2]int, keep []int, rest []string, err error) {
	keep = []int{0, 1, 2}
	brokerFD := -1
	defer func() {
		if err == nil && brokerFD >= 0 && !slices.ContainsFunc(moves, func(m [2]int) bool { return m[1] == brokerFD }) {
			moves, keep, rest, err = nil, nil, nil, fmt.Errorf("broker descriptor %d is not one placed", brokerFD)
		}
	}()
	for len(args) > 0 && args[0] != "--" {
		if n, ok := strings.CutPrefix(args[0], BrokerPrefix); ok {
			fd, _, err := parseBroker(n)
			if err != nil {
				return nil, nil, nil, err
			}
			if brokerFD >= 0 {
				return nil, nil, nil, fmt.Errorf("broker argument %q given twice", args[0])
			}
			brokerFD = fd
			args = args[1:]
			continue
		}
		if n, ok := strings.CutPrefix(args[0], keepPrefix); ok {
			fd, err := strconv.Atoi(n)
			if err != nil || fd < 3 {
				return nil, nil, nil, fmt.Errorf("bad kept descriptor %q", args[0])
			}
			keep = append(keep, fd)
			args = args[1:]
			continue
		}
		var src, dst int
		if _, err := fmt.Sscanf(args[0], "%d:%d", &src, &dst); err != nil {
			return nil, nil, nil, fmt.Errorf("bad move %q", args[0])
		}
		moves = append(moves, [2]int{src, dst})
		args = args[1:]
	}
	if len(args) < 3 {
		return nil, nil, nil, errors.New("no command")
	}
	return moves, keep, args[1:], nil
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
	hi = min(hi, MaxFD())
	for fd := lo; fd <= hi; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && err != unix.EBADF {
			return fmt.Errorf("marking descriptor %d close-on-exec: %w", fd, err)
		}
	}
	return nil
}
