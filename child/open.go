package child

import (
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// openBeneath opens rel beneath the directory dirfd with flags (O_NONBLOCK is
// added here and removed by the caller). It returns the descriptor or an
// errno, and whether the errno means that resolution would have left the
// directory (a symlink or ".." pointing outside, or any symlink where none
// may be followed).
//
// exact is true for exact-file rules: rel is then one component, and it is
// not followed if it is a symlink, so that the rule opens that entry and
// nothing it points to.
func (w *worker) openBeneath(dirfd int, rel string, flags int, exact bool) (int, syscall.Errno, bool) {
	flags |= unix.O_NONBLOCK
	if !w.s.openat2 {
		return w.walk(dirfd, rel, flags)
	}
	how := unix.OpenHow{
		Flags:   uint64(flags),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	}
	if exact {
		how.Resolve |= unix.RESOLVE_NO_SYMLINKS
	}
	fd, errno := w.openat2(dirfd, rel, &how)
	switch {
	case errno == 0:
		return fd, 0, false
	case errno == unix.EXDEV:
		// RESOLVE_BENEATH: an absolute symlink, or ".." above the root.
		return -1, errno, true
	case errno == unix.ELOOP && exact && flags&unix.O_NOFOLLOW == 0:
		// RESOLVE_NO_SYMLINKS met the rule's own entry being a symlink.
		return -1, errno, true
	}
	return -1, errno, false
}

// walk is the fallback for kernels without openat2: it resolves rel one
// component at a time from dirfd with O_NOFOLLOW, refusing every symlink, so
// that nothing on disk can redirect the walk outside the tree.
//
// N.B. This cannot stop a concurrent rename that moves a directory the walk
// already holds out of the tree; openat2 with RESOLVE_BENEATH can.
func (w *worker) walk(dirfd int, rel string, flags int) (int, syscall.Errno, bool) {
	if rel == "." {
		fd, err := unix.Openat(dirfd, ".", flags, 0)
		if err != nil {
			return -1, errnoOf(err), false
		}
		return fd, 0, false
	}
	cur := dirfd
	closeCur := func() {
		if cur != dirfd {
			unix.Close(cur)
		}
	}
	for {
		i := strings.IndexByte(rel, '/')
		if i < 0 {
			break
		}
		comp := rel[:i]
		rel = rel[i+1:]
		next, err := unix.Openat(cur, comp, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			closeCur()
			return -1, errnoOf(err), false
		}
		var st unix.Stat_t
		if err := unix.Fstat(next, &st); err != nil {
			unix.Close(next)
			closeCur()
			return -1, errnoOf(err), false
		}
		closeCur()
		cur = next
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
		case unix.S_IFLNK:
			closeCur()
			return -1, unix.ELOOP, true
		default:
			closeCur()
			return -1, unix.ENOTDIR, false
		}
	}
	fd, err := unix.Openat(cur, rel, flags|unix.O_NOFOLLOW, 0)
	if err != nil {
		errno := errnoOf(err)
		escape := false
		if errno == unix.ELOOP && flags&unix.O_NOFOLLOW == 0 {
			// Our O_NOFOLLOW refused a final symlink the caller would have
			// followed.
			escape = true
		}
		closeCur()
		return -1, errno, escape
	}
	closeCur()
	return fd, 0, false
}
