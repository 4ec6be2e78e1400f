//go:build linux

package broker

import (
	"context"
	"fmt"

	"golang.org/x/sys/unix"
)

// wakeOnDone returns an eventfd that becomes readable once ctx is done,
// for a loop that polls or blocks on other descriptors to wait on as
// well, and release, which the caller must call when it stops waiting:
// release stops the write (or waits for one already running, which would
// otherwise land on whatever reuses the number) and then closes the
// eventfd.
func wakeOnDone(ctx context.Context) (fd int, release func(), err error) {
	fd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return -1, nil, fmt.Errorf("broker: eventfd: %w", err)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		var one = [8]byte{1}
		unix.Write(fd, one[:])
	})
	release = func() {
		if !stop() {
			<-fired
		}
		unix.Close(fd)
	}
	return fd, release, nil
}
