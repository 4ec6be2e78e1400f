//go:build linux

package broker

import (
	"context"
	"fmt"

	"golang.org/x/sys/unix"
)

// KillWhenExits ties a program's life to its supervisor's: it waits
// until the process of supervisorPidfd exits, then kills the process of
// programPidfd with SIGKILL. It returns nil once it has killed the
// program, or as soon as the program has exited on its own, and
// ctx.Err() when cancelled first. It does not close either pidfd.
//
// It exists because the listener closing is not enough: the kernel then
// fails every notified call with ENOSYS, and a program that survives
// that keeps running with a filesystem view that has lost the files the
// supervisor served. The watcher must be a process that outlives the
// supervisor and that the program does not see as its child, and it
// should hold a copy of the listener while it watches, closing it only
// after KillWhenExits returns: the supervisor's descriptors are closed
// before its pidfd says it has exited, so without that copy the
// program's pending calls fail with ENOSYS a moment before the kill, and
// with it they wait and the program dies without seeing one.
func KillWhenExits(ctx context.Context, supervisorPidfd, programPidfd int) error {
	wake, release, err := wakeOnDone(ctx)
	if err != nil {
		return err
	}
	defer release()
	fds := []unix.PollFd{
		{Fd: int32(supervisorPidfd), Events: unix.POLLIN},
		{Fd: int32(programPidfd), Events: unix.POLLIN},
		{Fd: int32(wake), Events: unix.POLLIN},
	}
	for {
		for i := range fds {
			fds[i].Revents = 0
		}
		if _, err := unix.Poll(fds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			return fmt.Errorf("broker: waiting for the supervisor: %w", err)
		}
		switch {
		case fds[1].Revents != 0:
			return nil // the program is gone: nothing to protect
		case fds[0].Revents != 0:
			err := unix.PidfdSendSignal(programPidfd, unix.SIGKILL, nil, 0)
			if err != nil && err != unix.ESRCH {
				return fmt.Errorf("broker: killing the program after its supervisor exited: %w", err)
			}
			return nil
		case fds[2].Revents != 0:
			return ctx.Err()
		}
	}
}
