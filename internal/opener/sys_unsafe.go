//go:build linux

package opener

// The package's unsafe code: a string view of a request buffer and a raw
// openat2 call. x/sys/unix.Openat2 copies the path into a new NUL-terminated
// allocation on every call; the worker has a buffer for that instead.

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// unsafeString returns a string that shares b's bytes.
//
// N.B. The string is valid only until b is overwritten: the worker uses it
// for one request and receives the next message into the same buffer
// afterwards. Nothing may keep it beyond the request (the logger formats it
// before returning).
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// rawOpenat2 opens rel beneath dirfd. rel is copied into the worker's cpath
// buffer with a terminating NUL; it is at most policy.MaxPath bytes.
func (w *worker) rawOpenat2(dirfd int, rel string, how *unix.OpenHow) (int, syscall.Errno) {
	n := copy(w.cpath[:len(w.cpath)-1], rel)
	if n != len(rel) {
		return -1, unix.ENAMETOOLONG
	}
	w.cpath[n] = 0
	for again := 0; ; {
		fd, _, e := unix.Syscall6(unix.SYS_OPENAT2, uintptr(dirfd), uintptr(unsafe.Pointer(&w.cpath[0])),
			uintptr(unsafe.Pointer(how)), unsafe.Sizeof(*how), 0, 0)
		if e == unix.EINTR {
			continue
		}
		// With RESOLVE_BENEATH a ".." met on disk fails with EAGAIN when
		// any rename or mount anywhere on the system raced the lookup
		// (the kernel cannot prove the walk stayed beneath dirfd): try
		// again, a bounded number of times. EAGAIN also reports a
		// conflicting file lease under O_NONBLOCK, which retrying does not
		// clear; the bound turns that into the EAGAIN it is.
		if e == unix.EAGAIN && again < maxOpenat2Retries {
			again++
			continue
		}
		if e != 0 {
			return -1, e
		}
		return int(fd), 0
	}
}

// maxOpenat2Retries bounds the retries of an openat2 that a concurrent
// rename or mount interrupted (EAGAIN).
const maxOpenat2Retries = 64
