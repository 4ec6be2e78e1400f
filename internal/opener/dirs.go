//go:build linux

package opener

// Directories the opener works in. The opener resolves exactly one path
// from outside a descriptor: "/", once, in PinRoot. Every rule directory and
// every unix-socket listen rule's directory is resolved from that root fd,
// once, at the handshake, and every later system call that takes a path
// takes it relative to one of those pinned descriptors (see nopath_test.go,
// which keeps it so).

import (
	"encoding/binary"
	"fmt"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxSymlinkHops bounds the symlinks one resolution follows, as the kernel
// does (MAXSYMLINKS).
const maxSymlinkHops = 40

// procRootIno is the inode number of a procfs mount's root directory.
const procRootIno = 1

// PinRoot opens the root directory, the start of every resolution.
//
// N.B. This is the opener's one path resolved from the process's own root
// rather than from a pinned descriptor; nopath_test.go allows exactly this
// call.
func PinRoot() (int, error) {
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening the root directory: %w", err)
	}
	return fd, nil
}

// DirTable opens directories from a pinned root, each distinct path once,
// and owns the descriptors it opens.
type DirTable struct {
	root    int
	openat2 bool
	opened  map[string]int // path → index in fds and errs
	fds     []int          // O_PATH descriptors, -1 where resolving failed
	errs    []syscall.Errno
}

// NewDirTable makes a table that resolves from root, which the caller
// keeps owning, with openat2 when useOpenat2 (else the component walk).
func NewDirTable(root int, useOpenat2 bool) *DirTable {
	return &DirTable{root: root, openat2: useOpenat2, opened: make(map[string]int)}
}

// open resolves the absolute, clean directory path from the root, once. A
// directory that does not resolve is not fatal: its descriptor is -1 and
// its errno says why, which is what requests under it then fail with. A
// directory that lands inside a process's own /proc directory is fatal, and
// so is a procfs root that a tree rule (tree) would open beneath, since it
// holds "self": the error is an *OwnProcessError.
func (t *DirTable) open(path string, tree bool) (fd int, errno syscall.Errno, err error) {
	i, ok := t.opened[path]
	if !ok {
		if err := t.add(path); err != nil {
			return -1, 0, err
		}
		i = len(t.fds) - 1
	}
	if fd = t.fds[i]; fd >= 0 && tree {
		if root, err := isProcRoot(fd); err != nil || root {
			why := "is a procfs root, which holds /proc/self: a tree rule there reaches the opener's own process"
			if err != nil {
				why = "cannot tell whether it is a procfs root: " + err.Error()
			}
			return -1, 0, &OwnProcessError{Dir: path, Why: why}
		}
	}
	return fd, t.errs[i], nil
}

// add resolves path and records the outcome.
func (t *DirTable) add(path string) error {
	fd, err := ResolveDir(t.root, path, t.openat2)
	if err == nil {
		if why, bad, cerr := ownProcess(fd); cerr != nil || bad {
			unix.Close(fd)
			if cerr != nil {
				why = "cannot tell whether it is a process's own /proc directory: " + cerr.Error()
			}
			return &OwnProcessError{Dir: path, Why: why}
		}
	}
	t.opened[path] = len(t.fds)
	if err != nil {
		t.fds = append(t.fds, -1)
		t.errs = append(t.errs, errnoOf(err))
		return nil
	}
	t.fds = append(t.fds, fd)
	t.errs = append(t.errs, 0)
	return nil
}

// isProcRoot reports whether the directory fd is the root of a procfs.
func isProcRoot(fd int) (bool, error) {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		return false, err
	}
	if fs.Type != unix.PROC_SUPER_MAGIC {
		return false, nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, err
	}
	return st.Ino == procRootIno, nil
}

// Openat2 reports whether the table resolves with openat2(2), rather than
// the component walk.
func (t *DirTable) Openat2() bool { return t.openat2 }

// Len is how many distinct directories the table has opened.
func (t *DirTable) Len() int { return len(t.fds) }

// Close closes every directory the table opened (not the root, which the
// caller owns).
func (t *DirTable) Close() {
	for _, fd := range t.fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	t.fds = nil
	t.opened = nil
}

// ResolveDir opens the absolute directory path beneath root as if root were
// "/" (RESOLVE_IN_ROOT): the policy author's symlinks in the path are
// followed, now and once, but never a magic link (/proc/*/fd/*, /proc/*/cwd,
// ...), and nothing can climb above root.
func ResolveDir(root int, path string, useOpenat2 bool) (int, error) {
	if useOpenat2 {
		rel := strings.TrimPrefix(path, "/")
		if rel == "" {
			rel = "."
		}
		how := &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		}
		fd, err := unix.Openat2(root, rel, how)
		// A concurrent rename or mount anywhere makes a scoped lookup
		// through ".." fail with EAGAIN (see rawOpenat2): retry, bounded.
		for again := 0; err == unix.EAGAIN && again < maxOpenat2Retries; again++ {
			fd, err = unix.Openat2(root, rel, how)
		}
		if err != nil {
			return -1, err
		}
		return fd, nil
	}
	return walkInRoot(root, path)
}

// walkInRoot is ResolveDir without openat2: one component at a time with
// O_NOFOLLOW, keeping the directories it went through on a stack so that
// ".." goes back to the directory it came from and never above root. It
// follows a symlink by reading it (readlinkat on the link itself), at most
// maxSymlinkHops of them, restarting from root at an absolute target.
//
// It cannot tell a magic link from an ordinary symlink by its target, so on
// procfs, where magic links live, it follows only the symlinks in a procfs
// root directory (self, thread-self, mounts, net: plain links to a pid's
// directory, which ownProcess then refuses) and refuses every other one
// with ELOOP, as RESOLVE_NO_MAGICLINKS would.
//
// N.B. Like the opener's request walk, this cannot stop a concurrent rename
// from moving a directory it already holds; it runs once, at the handshake.
func walkInRoot(root int, path string) (int, error) {
	var stack []int // directories entered below root; top is current
	cur := func() int {
		if len(stack) == 0 {
			return root
		}
		return stack[len(stack)-1]
	}
	popAll := func() {
		for _, fd := range stack {
			unix.Close(fd)
		}
		stack = stack[:0]
	}
	defer popAll()
	rest := path
	hops := 0
	buf := make([]byte, unix.PathMax)
	for rest != "" {
		var comp string
		comp, rest, _ = strings.Cut(rest, "/")
		switch comp {
		case "", ".":
			continue
		case "..":
			if n := len(stack); n > 0 {
				unix.Close(stack[n-1])
				stack = stack[:n-1]
			}
			continue
		}
		fd, err := unix.Openat(cur(), comp, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, err
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, err
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			stack = append(stack, fd)
			continue
		case unix.S_IFLNK:
		default:
			unix.Close(fd)
			return -1, unix.ENOTDIR
		}
		hops++
		if hops > maxSymlinkHops {
			unix.Close(fd)
			return -1, unix.ELOOP
		}
		target, err := readLink(cur(), fd, buf)
		if err != nil {
			return -1, err
		}
		if strings.HasPrefix(target, "/") {
			popAll()
		}
		if rest != "" {
			target += "/" + rest
		}
		rest = target
	}
	return unix.Openat(cur(), ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// readLink reads the symlink link (an O_PATH descriptor, which it closes),
// found in directory dir, into buf; a procfs magic link is refused with
// ELOOP, as RESOLVE_NO_MAGICLINKS would.
func readLink(dir, link int, buf []byte) (string, error) {
	defer unix.Close(link)
	if onProc, err := mayBeMagic(dir, link); err != nil || onProc {
		if err != nil {
			return "", err
		}
		return "", unix.ELOOP
	}
	n, err := unix.Readlinkat(link, "", buf)
	if err != nil {
		return "", err
	}
	switch {
	case n == 0:
		return "", unix.ENOENT
	case n == len(buf):
		return "", unix.ENAMETOOLONG
	}
	return string(buf[:n]), nil
}

// mayBeMagic reports whether the symlink link, found in directory dir, may
// be a procfs magic link: it is on procfs and not in a procfs root.
func mayBeMagic(dir, link int) (bool, error) {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(link, &fs); err != nil {
		return false, err
	}
	if fs.Type != unix.PROC_SUPER_MAGIC {
		return false, nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(dir, &st); err != nil {
		return false, err
	}
	return st.Ino != procRootIno, nil
}

// ownProcess reports whether the directory dirfd is, or is beneath, a
// process's directory on procfs (/proc/<pid>, which /proc/self and
// /proc/thread-self lead to), and says why. What stays allowed on procfs
// is everything else: the procfs root itself (for exact-file rules such as
// /proc/cpuinfo; a tree rule there is refused by package policy) and the
// directories that belong to no process (/proc/sys, /proc/driver, ...).
//
// It climbs ".." from dirfd to the procfs root and looks up the name of the
// top-level directory it came through. Where it cannot (a bind mount of a
// procfs subdirectory, whose root is not procfs's), it reports the
// directory as bad: unknown is refused.
func ownProcess(dirfd int) (why string, bad bool, err error) {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(dirfd, &fs); err != nil {
		return "", false, err
	}
	if fs.Type != unix.PROC_SUPER_MAGIC {
		return "", false, nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(dirfd, &st); err != nil {
		return "", false, err
	}
	if st.Ino == procRootIno {
		return "", false, nil
	}
	cur, err := unix.Openat(dirfd, ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", false, err
	}
	defer func() { unix.Close(cur) }()
	for depth := 0; depth < unix.PathMax/2; depth++ {
		up, err := unix.Openat(cur, "..", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", false, err
		}
		var ust unix.Stat_t
		if err := unix.Fstat(up, &ust); err != nil {
			unix.Close(up)
			return "", false, err
		}
		switch {
		case ust.Dev != st.Dev || (ust.Ino == st.Ino && ust.Ino != procRootIno):
			unix.Close(up)
			return "on procfs, in a mount whose root is not the procfs root", true, nil
		case ust.Ino == procRootIno:
			name, err := nameOf(up, st.Ino)
			unix.Close(up)
			if err != nil {
				return "", false, err
			}
			if isDigits(name) {
				return fmt.Sprintf("resolves into /proc/%s, a process's own directory", name), true, nil
			}
			return "", false, nil
		}
		unix.Close(cur)
		cur, st = up, ust
	}
	return "", false, unix.ELOOP
}

// nameOf finds the name of the entry with inode ino in the directory dir
// (an O_PATH descriptor), reading its entries.
func nameOf(dir int, ino uint64) (string, error) {
	fd, err := unix.Openat(dir, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	buf := make([]byte, 16<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return "", err
		}
		if n <= 0 {
			return "", unix.ENOENT
		}
		// struct linux_dirent64: ino u64, off s64, reclen u16, type u8,
		// name NUL-terminated.
		for b := buf[:n]; len(b) >= 19; {
			reclen := int(binary.NativeEndian.Uint16(b[16:]))
			if reclen < 19 || reclen > len(b) {
				return "", unix.EIO
			}
			if binary.NativeEndian.Uint64(b) == ino {
				name := b[19:reclen]
				if i := strings.IndexByte(string(name), 0); i >= 0 {
					name = name[:i]
				}
				return string(name), nil
			}
			b = b[reclen:]
		}
	}
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isProcfs reports whether fd is on a procfs; when fstatfs fails it says
// yes, so that callers refusing procfs refuse what they cannot tell.
func isProcfs(fd int) bool {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		return true
	}
	return fs.Type == unix.PROC_SUPER_MAGIC
}
