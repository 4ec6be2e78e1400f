//go:build linux

package opener

import (
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/policy"
)

// openBeneath opens d.Rel beneath the directory dirfd with d.Flags (and
// O_NONBLOCK, which the caller removes again). It returns the descriptor or
// an errno; whether the open created the file (needed to know whether to
// apply the rule's owner); and whether the errno means that resolution
// would have left the directory (a symlink or ".." pointing outside, or any
// symlink where none may be followed).
//
// For an exact-file rule d.Rel is one component, and it is not followed if
// it is a symlink, so that the rule opens that entry and nothing it points
// to.
func (w *worker) openBeneath(dirfd int, d policy.Decision) (fd int, created bool, errno syscall.Errno, escape bool) {
	flags := d.Flags | unix.O_NONBLOCK
	open := w.openat2
	if !w.s.rs.openat2 {
		open = w.walk
	}
	switch {
	case flags&unix.O_TMPFILE == unix.O_TMPFILE:
		created = true
	case flags&unix.O_CREAT != 0 && flags&unix.O_EXCL == 0 && (d.UID != policy.NoOwner || d.GID != policy.NoOwner):
		// To own only what it creates, the opener must know whether this
		// open creates: try exclusively first, then open what exists.
		fd, errno, escape = open(dirfd, d.Rel, flags|unix.O_EXCL, d.Mode, d.Exact)
		if errno != unix.EEXIST {
			return fd, errno == 0, errno, escape
		}
		flags &^= unix.O_CREAT
	case flags&unix.O_CREAT != 0:
		created = flags&unix.O_EXCL != 0
	}
	mode := d.Mode
	if flags&(unix.O_CREAT|unix.O_TMPFILE) == 0 {
		mode = 0 // openat2 refuses a mode without O_CREAT or O_TMPFILE
	}
	fd, errno, escape = open(dirfd, d.Rel, flags, mode, d.Exact)
	return fd, created && errno == 0, errno, escape
}

// openat2 opens rel beneath dirfd with openat2(2).
func (w *worker) openat2(dirfd int, rel string, flags int, mode uint32, exact bool) (int, syscall.Errno, bool) {
	how := unix.OpenHow{
		Flags:   uint64(flags),
		Mode:    uint64(mode),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	}
	if exact {
		how.Resolve |= unix.RESOLVE_NO_SYMLINKS
	}
	fd, errno := w.rawOpenat2(dirfd, rel, &how)
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
func (w *worker) walk(dirfd int, rel string, flags int, mode uint32, _ bool) (int, syscall.Errno, bool) {
	if rel == "." {
		fd, err := unix.Openat(dirfd, ".", flags, mode)
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
	fd, err := unix.Openat(cur, rel, flags|unix.O_NOFOLLOW, mode)
	closeCur()
	if err != nil {
		errno := errnoOf(err)
		// Our O_NOFOLLOW refused a final symlink the caller would have
		// followed.
		return -1, errno, errno == unix.ELOOP && flags&unix.O_NOFOLLOW == 0
	}
	return fd, 0, false
}
