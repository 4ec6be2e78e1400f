//go:build linux

package bench

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	"golang.org/x/sys/unix"
)

// The raw Go loop: the "what Go itself costs" baseline. The same
// round trip as the C reference's broker_seqpacket with one descriptor, a
// request on a SOCK_SEQPACKET socketpair answered with the descriptor in
// SCM_RIGHTS, written in Go with nothing of privsep's: blocking x/sys
// Recvmsg and Sendmsg, no policy, no containment, no checks on what was
// opened. The opener side is this executable re-executed with RawOpenerEnv
// naming the one file it opens, whatever the request says, so that the
// mode hands out nothing its starter could not open itself.

// RawOpenerEnv, set to a path, makes this executable the raw loop's
// opener (IsRawOpener, RunRawOpener) on the socket at descriptor 3.
const RawOpenerEnv = "PRIVSEP_BENCH_RAW_OPENER"

// IsRawOpener reports whether this process was started by StartRawLoop.
func IsRawOpener() bool { return os.Getenv(RawOpenerEnv) != "" }

// RunRawOpener is the raw loop's opener: for each request on descriptor 3
// it opens the file RawOpenerEnv names and sends the descriptor back, until
// the other end closes. It returns nil at that end of stream.
func RunRawOpener() error {
	path := os.Getenv(RawOpenerEnv)
	const sock = 3
	if t, err := unix.GetsockoptInt(sock, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || t != unix.SOCK_SEQPACKET {
		return fmt.Errorf("raw loop opener: descriptor 3 is not a SOCK_SEQPACKET socket (%v)", err)
	}
	buf := make([]byte, 64)
	for {
		n, _, _, _, err := unix.Recvmsg(sock, buf, nil, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("raw loop opener: recvmsg: %w", err)
		}
		if n == 0 {
			return nil
		}
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("raw loop opener: %w", &os.PathError{Op: "open", Path: path, Err: err})
		}
		err = unix.Sendmsg(sock, buf[:n], unix.UnixRights(fd), nil, 0)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("raw loop opener: sendmsg: %w", err)
		}
	}
}

// RawLoop is the parent's end of a raw loop.
type RawLoop struct {
	sock    int
	cmd     *exec.Cmd
	buf     []byte
	oob     []byte
	request []byte
}

// StartRawLoop starts a raw loop opener that opens path.
func StartRawLoop(path string) (*RawLoop, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("raw loop: socketpair: %w", err)
	}
	child := os.NewFile(uintptr(fds[1]), "raw-loop-opener")
	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{"privsep-bench-raw-opener"},
		Env:        []string{RawOpenerEnv + "=" + path},
		ExtraFiles: []*os.File{child},
		Stderr:     os.Stderr,
	}
	err = cmd.Start()
	child.Close()
	if err != nil {
		unix.Close(fds[0])
		return nil, fmt.Errorf("raw loop: re-executing /proc/self/exe: %w", err)
	}
	return &RawLoop{sock: fds[0], cmd: cmd, buf: make([]byte, 64), oob: make([]byte, unix.CmsgSpace(4)), request: []byte("open")}, nil
}

// PID is the raw loop opener's process id.
func (l *RawLoop) PID() int { return l.cmd.Process.Pid }

// OpenClose makes one round trip and closes the descriptor it brought.
func (l *RawLoop) OpenClose() error {
	if err := unix.Sendmsg(l.sock, l.request, nil, nil, 0); err != nil {
		return fmt.Errorf("raw loop: sendmsg: %w", err)
	}
	n, oobn, flags, _, err := unix.Recvmsg(l.sock, l.buf, l.oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return fmt.Errorf("raw loop: recvmsg: %w", err)
	}
	// Whatever arrived is closed, whatever else is wrong with the reply.
	var fds []int
	msgs, perr := unix.ParseSocketControlMessage(l.oob[:oobn])
	for i := range msgs {
		if got, err := unix.ParseUnixRights(&msgs[i]); err == nil {
			fds = append(fds, got...)
		}
	}
	for _, fd := range fds {
		unix.Close(fd)
	}
	switch {
	case n == 0:
		return errors.New("raw loop: the opener closed its end")
	case flags&unix.MSG_CTRUNC != 0:
		return errors.New("raw loop: control data truncated")
	case perr != nil || len(msgs) != 1 || len(fds) != 1:
		return fmt.Errorf("raw loop: %d control messages with %d descriptors (%v), want 1 with 1", len(msgs), len(fds), perr)
	}
	return nil
}

// Close ends the opener (end of stream) and waits for it.
func (l *RawLoop) Close() error {
	unix.Close(l.sock)
	if err := l.cmd.Wait(); err != nil {
		return fmt.Errorf("raw loop opener: %w", err)
	}
	return nil
}
