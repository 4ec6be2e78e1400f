//go:build linux

package trampoline

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/broker"
	"github.com/privsep-go/privsep/protocol"
)

// brokerID is the id of the trampoline's one request: it is the only
// client left on the opener's socket.
const brokerID = 1

// handOver installs the broker's seccomp filter and hands its listener to
// the opener on sock, waiting for the ack: until the opener serves it, the
// loader's first open after execve would wait for nobody. The filter
// needs no_new_privs, which the sandbox set before this process started.
// The trampoline's copies of the listener and of sock go: the listener
// now, sock at execve (close-on-exec).
//
// First it starts the watcher (see watch), which kills the command when
// the opener dies, and hands it the listener too.
func handOver(sock, openerPID int, stderr io.Writer) error {
	runtime.LockOSThread() // TSYNC covers the others; execve keeps this one
	// The parent's socket was non-blocking; nothing else uses it now.
	if err := unix.SetNonblock(sock, false); err != nil {
		return fmt.Errorf("making the opener's socket blocking: %w", err)
	}
	// Before the filter, so that the watcher is not under it.
	wsock, err := startWatcher(openerPID, stderr)
	if err != nil {
		return err
	}
	defer unix.Close(wsock)
	lfd, err := broker.InstallFilter()
	if err != nil {
		return fmt.Errorf("installing the seccomp filter: %w", err)
	}
	defer unix.Close(lfd)
	if err := protocol.Send(wsock, protocol.AppendBroker(nil, brokerID), []int{lfd}, 0); err != nil {
		return fmt.Errorf("handing the listener to the watcher: %w", err)
	}
	if err := protocol.Send(sock, protocol.AppendBroker(nil, brokerID), []int{lfd}, 0); err != nil {
		return fmt.Errorf("handing the listener to the opener: %w", err)
	}
	buf, oob := make([]byte, protocol.MaxMessage), make([]byte, protocol.OOBSize)
	m, err := protocol.Recv(sock, buf, oob, nil, 0)
	if err != nil {
		return fmt.Errorf("waiting for the opener to serve the listener: %w", err)
	}
	protocol.CloseFDs(m.FDs)
	switch {
	case m.Type == protocol.TypeError:
		e, derr := protocol.DecodeError(m.Payload)
		if derr != nil {
			return fmt.Errorf("the opener refused the listener: %w", derr)
		}
		return fmt.Errorf("the opener refused the listener: %w (%s)", unix.Errno(e.Errno), e.Reason)
	case m.Type != protocol.TypeBrokerAck || m.ID != brokerID:
		return fmt.Errorf("the opener answered the listener with %s id %d, want broker-ack id %d", m.Type, m.ID, brokerID)
	}
	return protocol.DecodeBrokerAck(m.Header, m.Payload)
}

// The watcher's roles, as the first trampoline argument.
const (
	watchLaunchArg = "-broker-watch-launch"
	watchArg       = "-broker-watch"
)

// startWatcher starts the watcher with pidfds of the opener and of this
// process (which becomes the command) and returns this side of a socket
// pair to it. The watcher is double-forked: a launcher starts it and exits
// at once, so that the command never has it as a child (a shell's wait
// would wait for it). The opener is this process's own unreaped child, so
// its pid cannot have been reused.
func startWatcher(openerPID int, stderr io.Writer) (int, error) {
	opfd, err := unix.PidfdOpen(openerPID, 0)
	if err != nil {
		return -1, fmt.Errorf("pidfd_open of the opener %d: %w", openerPID, err)
	}
	defer unix.Close(opfd)
	selffd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return -1, fmt.Errorf("pidfd_open of this process: %w", err)
	}
	defer unix.Close(selffd)
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socketpair for the watcher: %w", err)
	}
	defer unix.Close(sp[1])
	errf := os.Stderr
	if f, ok := stderr.(*os.File); ok {
		errf = f
	}
	files := []*os.File{errf, errf, errf, os.NewFile(uintptr(opfd), "opener-pidfd"), os.NewFile(uintptr(selffd), "program-pidfd"), os.NewFile(uintptr(sp[1]), "watcher-socket")}
	p, err := os.StartProcess("/proc/self/exe", []string{"privsep-broker-watch", Arg, watchLaunchArg}, &os.ProcAttr{Files: files})
	if err == nil {
		var st *os.ProcessState
		if st, err = p.Wait(); err == nil && !st.Success() {
			err = fmt.Errorf("the launcher ended with %v", st)
		}
	}
	if err != nil {
		unix.Close(sp[0])
		return -1, fmt.Errorf("starting the watcher: %w", err)
	}
	return sp[0], nil
}

// launchWatcher is the launcher: it starts the watcher with its own
// descriptors 0 to 5 and exits without waiting.
func launchWatcher() int {
	files := make([]*os.File, 6)
	for i := range files {
		files[i] = os.NewFile(uintptr(i), "watcher-fd")
	}
	if _, err := os.StartProcess("/proc/self/exe", []string{"privsep-broker-watch", Arg, watchArg}, &os.ProcAttr{Files: files}); err != nil {
		fmt.Fprintf(os.Stderr, "privsep exec: --broker: starting the watcher: %v\n", err)
		return ExitFailed
	}
	return 0
}

// watch is the watcher: descriptor 3 is the opener's pidfd, 4 the
// command's, 5 the socket the listener comes on. It keeps that copy of the
// listener until the command or the opener is gone, so that when the
// opener dies the command's calls wait instead of failing with ENOSYS,
// and kills the command then: it must not go on with a view of the files
// that has lost those the opener served.
func watch() int {
	buf, oob := make([]byte, protocol.MaxMessage), make([]byte, protocol.OOBSize)
	m, err := protocol.Recv(5, buf, oob, nil, 0)
	if err != nil {
		return 0 // the trampoline failed before the filter: nothing to watch
	}
	defer protocol.CloseFDs(m.FDs)
	unix.Close(5)
	if err := broker.KillWhenExits(context.Background(), 3, 4); err != nil {
		fmt.Fprintf(os.Stderr, "privsep exec: --broker watcher: %v\n", err)
		return ExitFailed
	}
	return 0
}
