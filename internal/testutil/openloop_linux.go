//go:build linux

package testutil

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// OpenLoop opens path read-only and closes it again, n times, and returns
// how long that took: the loop program of the brokered-open benchmarks,
// which times its own opens so that starting it does not count.
func OpenLoop(path string, n int) (time.Duration, error) {
	start := time.Now()
	for i := 0; i < n; i++ {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, fmt.Errorf("open %d of %d: %w", i+1, n, err)
		}
		unix.Close(fd)
	}
	return time.Since(start), nil
}
