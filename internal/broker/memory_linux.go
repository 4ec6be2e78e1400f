//go:build linux && (amd64 || arm64)

package broker

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// readPath reads a NUL-terminated path at addr, a page at a time: a read
// that crosses into an unmapped page fails as a whole, so reading a
// pathMax block would refuse a short path near the end of a mapping.
func readPath(pid int, addr uint64) (string, error) {
	page := uint64(unix.Getpagesize())
	var chunk [pathMax]byte
	out := make([]byte, 0, 128)
	for len(out) < pathMax {
		n := min(page-addr%page, uint64(pathMax-len(out)))
		if err := readMem(pid, addr, chunk[:n]); err != nil {
			if err == unix.EFAULT {
				return "", &callError{unix.EFAULT, "path"}
			}
			return "", fmt.Errorf("broker: reading a path from thread %d: %w", pid, err)
		}
		if i := bytes.IndexByte(chunk[:n], 0); i >= 0 {
			return string(append(out, chunk[:i]...)), nil
		}
		out = append(out, chunk[:n]...)
		addr += n
	}
	return "", &callError{unix.ENAMETOOLONG, "path"}
}

// openHowSize0 is OPEN_HOW_SIZE_VER0, the size of struct open_how in 5.6.
const openHowSize0 = unix.SizeofOpenHow

// readHow reads openat2's struct open_how with the kernel's rules for its
// size (copy_struct_from_user): smaller than the first version is EINVAL,
// bigger than a page E2BIG, and bytes past the fields this kernel knows
// must be zero, else E2BIG. Values the kernel itself would refuse are
// refused with its errno too.
func readHow(pid int, addr, size uint64) (unix.OpenHow, error) {
	var how unix.OpenHow
	if size < openHowSize0 {
		return how, &callError{unix.EINVAL, "open_how size"}
	}
	if size > uint64(unix.Getpagesize()) {
		return how, &callError{unix.E2BIG, "open_how size"}
	}
	b := make([]byte, size)
	if err := readMem(pid, addr, b); err != nil {
		if err == unix.EFAULT {
			return how, &callError{unix.EFAULT, "open_how"}
		}
		return how, fmt.Errorf("broker: reading open_how from thread %d: %w", pid, err)
	}
	for _, c := range b[openHowSize0:] {
		if c != 0 {
			return how, &callError{unix.E2BIG, "open_how"}
		}
	}
	ne := binary.NativeEndian
	how.Flags, how.Mode, how.Resolve = ne.Uint64(b[0:]), ne.Uint64(b[8:]), ne.Uint64(b[16:])
	if how.Flags>>32 != 0 || how.Mode&^0o7777 != 0 {
		return how, &callError{unix.EINVAL, "open_how"}
	}
	if how.Mode != 0 && how.Flags&(unix.O_CREAT|unix.O_TMPFILE&^unix.O_DIRECTORY) == 0 {
		return how, &callError{unix.EINVAL, "open_how mode without O_CREAT"}
	}
	return how, nil
}
