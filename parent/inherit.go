//go:build linux

package parent

import (
	"fmt"
	"os"
	"strconv"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// Inherited returns the opener that the process which exec'd this program
// started and left open for it, as privsep exec --keep-opener does. It finds
// the socket through PRIVSEP_OPENER_FD and the opener through
// PRIVSEP_OPENER_PID, checks that the descriptor is a SOCK_SEQPACKET socket
// connected to that process, and removes both variables from the
// environment so that programs this one starts do not inherit the claim.
// The handshake was done by the process that started the opener: the policy
// is whatever it sent.
//
// The opener is this process's child (exec keeps the pid), so Close waits
// for it and reports its exit status as usual.
func Inherited(log hclog.Logger) (*Opener, error) {
	fdStr, ok := os.LookupEnv(OpenerFDEnv)
	if !ok {
		return nil, ErrNoInheritedOpener
	}
	pidStr := os.Getenv(OpenerPIDEnv)
	os.Unsetenv(OpenerFDEnv)
	os.Unsetenv(OpenerPIDEnv)
	fd, err1 := strconv.Atoi(fdStr)
	pid, err2 := strconv.Atoi(pidStr)
	if err1 != nil || err2 != nil || fd < 0 || pid <= 0 {
		return nil, fmt.Errorf("privsep: inherited opener: bad %s=%q or %s=%q", OpenerFDEnv, fdStr, OpenerPIDEnv, pidStr)
	}
	if typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_SEQPACKET {
		return nil, fmt.Errorf("privsep: inherited opener: descriptor %d is not a SOCK_SEQPACKET socket", fd)
	}
	// SO_PEERCRED cannot name the opener: both ends of a socketpair report
	// the process that made it, which is this one (exec kept the pid). Ask
	// the kernel instead whether the opener is this process's child:
	// waitid with WNOWAIT answers ECHILD for anyone else, reaps nothing,
	// and reads no file, so it works under Landlock too.
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil); err != nil {
		return nil, fmt.Errorf("privsep: inherited opener: pid %d is not this process's child: %w", pid, err)
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		return nil, fmt.Errorf("privsep: inherited opener: %w", err)
	}
	unix.CloseOnExec(fd)
	if log == nil {
		log = hclog.NewNullLogger()
	}
	// From here the Opener owns fd (newOpener closes it if it fails).
	o, err := newOpener(fd, log)
	if err != nil {
		return nil, fmt.Errorf("privsep: inherited opener: %w", err)
	}
	o.pid = pid
	logsDone := make(chan struct{})
	close(logsDone)
	startProc(o, proc, DefaultCloseTimeout, func() *os.ProcessState {
		ps, _ := proc.Wait() // our child, checked above; nil if that changed
		return ps
	}, logsDone)
	return o, nil
}
