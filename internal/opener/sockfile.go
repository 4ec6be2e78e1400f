//go:build linux

package opener

// Unix socket files, made without a path from "/" and without following a
// symlink: for listen rules and for a server's own socket.
//
// bind(2) takes a path and follows symlinks in it, and the mode and owner
// of the file it creates used to be set afterwards by path, which let
// whoever can write in the socket's directory point the opener's chmod at
// any file. Here nothing is done by path in a directory someone else can
// write: the socket is bound inside a private directory the opener just
// made (root's, 0700), where only the opener can change anything, with its
// mode fixed on the socket before bind and its owner set there; then the
// finished file is renamed into the pinned directory in one step, never
// over anything (RENAME_NOREPLACE), or, to replace a socket, exchanged with
// what is there (RENAME_EXCHANGE) so that what was there can be looked at
// where no one else can touch it, and put back if it is not a socket.

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// SocketSpec says what socket file MakeSocket makes.
type SocketSpec struct {
	Dir     int    // pinned descriptor of the directory the file goes in
	DirPath string // that directory's absolute path, for the socket's address
	Name    string // the file's name in Dir: one component
	Type    int    // unix.SOCK_STREAM or unix.SOCK_SEQPACKET
	Mode    uint32 // the file's permission bits, exactly
	UID     int    // owner to give the file; -1 leaves it the opener's
	GID     int    // group to give the file; -1 leaves it the opener's

	// Replace, when not nil, decides whether what is at Name already may
	// be removed: it is called with it moved into the private directory
	// (at pdir, pname; st from fstatat without following) and returns nil
	// to remove it, or an error to put it back and fail with. When nil,
	// anything at Name is left alone and the error is EADDRINUSE.
	Replace func(pdir int, pname string, st *unix.Stat_t) error
}

// errInUse is what a name that may not be replaced fails with.
var errInUse = unix.EADDRINUSE

// MakeSocket creates an AF_UNIX socket of sp.Type and publishes its file as
// sp.Name in sp.Dir with exactly sp.Mode and the owner sp asks for. The
// socket is bound, not listening: until the caller calls listen(2),
// connecting to it is refused. It returns the socket, which the caller
// owns, and the file's identity.
func MakeSocket(sp SocketSpec) (int, unix.Stat_t, error) {
	var file unix.Stat_t
	if sp.Name == "" || sp.Name == "." || sp.Name == ".." || strings.IndexByte(sp.Name, '/') >= 0 {
		return -1, file, fmt.Errorf("socket file name %q is not one path component", sp.Name)
	}
	fd, err := unix.Socket(unix.AF_UNIX, sp.Type|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, file, os.NewSyscallError("socket", err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	// bind(2) gives the file the socket inode's mode less the umask, and
	// the umask is zero where privateDir.bind binds: the file is born with
	// mode.
	if err := unix.Fchmod(fd, sp.Mode); err != nil {
		return -1, file, os.NewSyscallError("fchmod", err)
	}
	p, err := newPrivateDir(sp.Dir, sp.DirPath)
	if err != nil {
		return -1, file, err
	}
	defer p.remove()
	if err := p.bind(fd, sp.Name); err != nil {
		return -1, file, err
	}
	if err := unix.Fstatat(p.leaf, sp.Name, &file, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return -1, file, os.NewSyscallError("fstatat", err)
	}
	if file.Mode&unix.S_IFMT != unix.S_IFSOCK || file.Mode&0o7777 != sp.Mode {
		return -1, file, fmt.Errorf("bind made a file of mode %#o, want a socket of mode %#o", file.Mode, sp.Mode)
	}
	if sp.UID != -1 || sp.GID != -1 {
		// No one else can write in the private directory, so this name is
		// still the socket just bound.
		if err := unix.Fchownat(p.leaf, sp.Name, sp.UID, sp.GID, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return -1, file, os.NewSyscallError("fchownat", err)
		}
	}
	if err := p.publish(sp, &file); err != nil {
		return -1, file, err
	}
	ok = true
	return fd, file, nil
}

// privateDir is a directory the opener made for one socket, beside the
// socket's final place (so that a rename can move the file in one step),
// with the socket's directory path mirrored inside it, so that the socket
// can be bound to its real address with the thread's root moved there.
type privateDir struct {
	parent int    // the pinned directory it is in
	name   string // its name there
	fd     int    // O_PATH descriptor of it
	ino    uint64
	dev    uint64
	mirror []string // the mirrored path's components, in order
	fds    []int    // their descriptors, in order
	leaf   int      // the innermost directory: fd, or the last of fds
	addr   string   // the socket directory's address with a trailing slash, for bind
}

// newPrivateDir makes a private directory in dir and mirrors dirPath in it.
func newPrivateDir(dir int, dirPath string) (*privateDir, error) {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("naming a private directory: %w", err)
	}
	p := &privateDir{parent: dir, name: ".privsep-" + hex.EncodeToString(rnd[:]), fd: -1}
	if err := unix.Mkdirat(dir, p.name, 0o700); err != nil {
		return nil, os.NewSyscallError("mkdirat private directory", err)
	}
	fd, err := unix.Openat(dir, p.name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		// Someone replaced it already; what is there now is not ours.
		return nil, os.NewSyscallError("openat private directory", err)
	}
	p.fd, p.leaf = fd, fd
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		p.remove()
		return nil, os.NewSyscallError("fstat private directory", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Geteuid() || st.Mode&0o077 != 0 {
		unix.Close(fd)
		p.fd = -1 // not ours: leave it
		return nil, fmt.Errorf("private directory %s was replaced (mode %#o, uid %d)", p.name, st.Mode, st.Uid)
	}
	p.dev, p.ino = uint64(st.Dev), st.Ino
	for _, c := range strings.Split(strings.Trim(dirPath, "/"), "/") {
		if c == "" {
			continue
		}
		if err := unix.Mkdirat(p.leaf, c, 0o700); err != nil {
			p.remove()
			return nil, os.NewSyscallError("mkdirat in private directory", err)
		}
		p.mirror = append(p.mirror, c)
		next, err := unix.Openat(p.leaf, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			p.remove()
			return nil, os.NewSyscallError("openat in private directory", err)
		}
		p.fds = append(p.fds, next)
		p.leaf = next
	}
	p.addr = strings.TrimSuffix(dirPath, "/") + "/"
	return p, nil
}

// bind binds fd to name in the innermost mirrored directory, under the
// address dirPath/name when the thread can move its root (CAP_SYS_CHROOT),
// else under the relative address the thread's working directory gives.
func (p *privateDir) bind(fd int, name string) error {
	return inDir(p.fd, true, func(chrooted bool) error {
		addr := p.addr + name
		if !chrooted {
			addr = strings.TrimPrefix(addr, "/")
		}
		if err := unix.Bind(fd, &unix.SockaddrUnix{Name: addr}); err != nil {
			return os.NewSyscallError("bind", err)
		}
		return nil
	})
}

// publish moves the socket file from the private directory to its place.
func (p *privateDir) publish(sp SocketSpec, mine *unix.Stat_t) error {
	for range 3 {
		err := unix.Renameat2(p.leaf, sp.Name, sp.Dir, sp.Name, unix.RENAME_NOREPLACE)
		if err == unix.EINVAL {
			// A filesystem without RENAME_NOREPLACE: a hard link is as
			// atomic, and fails the same way on an existing name.
			if err = unix.Linkat(p.leaf, sp.Name, sp.Dir, sp.Name, 0); err == nil {
				unix.Unlinkat(p.leaf, sp.Name, 0)
			}
		}
		switch {
		case err == nil:
			return nil
		case err != unix.EEXIST:
			return os.NewSyscallError("renameat2", err)
		case sp.Replace == nil:
			return fmt.Errorf("%s exists and may not be replaced (no replace option): %w", sp.Name, errInUse)
		}
		err = unix.Renameat2(p.leaf, sp.Name, sp.Dir, sp.Name, unix.RENAME_EXCHANGE)
		if err == unix.ENOENT {
			continue // it went away meanwhile: try to move in again
		}
		if err != nil {
			return fmt.Errorf("replacing %s: %w", sp.Name, os.NewSyscallError("renameat2 RENAME_EXCHANGE", err))
		}
		// What was there is in the private directory now.
		var old unix.Stat_t
		verdict := unix.Fstatat(p.leaf, sp.Name, &old, unix.AT_SYMLINK_NOFOLLOW)
		if verdict == nil {
			verdict = sp.Replace(p.leaf, sp.Name, &old)
		}
		if verdict == nil {
			if err := unix.Unlinkat(p.leaf, sp.Name, 0); err != nil {
				return fmt.Errorf("removing the replaced %s: %w", sp.Name, os.NewSyscallError("unlinkat", err))
			}
			return nil
		}
		if err := unix.Renameat2(p.leaf, sp.Name, sp.Dir, sp.Name, unix.RENAME_EXCHANGE); err != nil {
			return fmt.Errorf("%w; and putting it back failed: %w", verdict, os.NewSyscallError("renameat2 RENAME_EXCHANGE", err))
		}
		var back unix.Stat_t
		if unix.Fstatat(p.leaf, sp.Name, &back, unix.AT_SYMLINK_NOFOLLOW) == nil && (back.Dev != mine.Dev || back.Ino != mine.Ino) {
			// Someone put a third file at the name while we looked: it
			// is theirs and stays where the exchange put it; the private
			// directory stays too.
			return fmt.Errorf("%w; and %s changed while it was being replaced", verdict, sp.Name)
		}
		return verdict
	}
	return fmt.Errorf("%s keeps appearing and disappearing: %w", sp.Name, errInUse)
}

// remove removes the private directory and what the opener left in it, and
// closes its descriptors. It removes only entries of directories it made,
// which no one else can write in.
func (p *privateDir) remove() {
	if p.fd < 0 {
		return
	}
	for i := len(p.fds) - 1; i >= 0; i-- {
		parent := p.fd
		if i > 0 {
			parent = p.fds[i-1]
		}
		clearDir(p.fds[i])
		unix.Close(p.fds[i])
		unix.Unlinkat(parent, p.mirror[i], unix.AT_REMOVEDIR)
	}
	clearDir(p.fd)
	unix.Close(p.fd)
	p.fd = -1
	// The name is in a directory others may write in: remove it only if
	// it is still ours (a swap in between is an empty directory of theirs).
	var st unix.Stat_t
	if unix.Fstatat(p.parent, p.name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && uint64(st.Dev) == p.dev && st.Ino == p.ino {
		unix.Unlinkat(p.parent, p.name, unix.AT_REMOVEDIR)
	}
}

// clearDir removes the socket files the opener may have left in a
// directory of its own (a bound socket whose publishing failed).
func clearDir(dir int) {
	fd, err := unix.Openat(dir, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	buf := make([]byte, 4096)
	n, err := unix.Getdents(fd, buf)
	if err != nil || n <= 0 {
		return
	}
	var names []string
	_, _, names = unix.ParseDirent(buf[:n], -1, names)
	for _, name := range names {
		var st unix.Stat_t
		if unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK {
			unix.Unlinkat(dir, name, 0)
		}
	}
}

// inDir runs f on a thread of its own whose working directory is dir and
// whose umask is 0, with its root moved to dir too when moveRoot is set
// and the process may (f learns which). Nothing else in the process sees
// these: unshare(CLONE_FS) gives the thread its own root, working directory
// and umask. This is how bind(2) and connect(2), which take only a path,
// reach a file through a descriptor without resolving anything from "/".
//
// The goroutine locks itself to its thread and returns without unlocking:
// the Go runtime then terminates the thread instead of reusing it
// (runtime.LockOSThread), so no other goroutine ever runs with its changed
// directory, root or umask. Threads the runtime starts while it is locked
// come from its template thread, not from this one.
func inDir(dir int, moveRoot bool, f func(chrooted bool) error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- func() error {
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				return os.NewSyscallError("unshare CLONE_FS", err)
			}
			if err := unix.Fchdir(dir); err != nil {
				return os.NewSyscallError("fchdir", err)
			}
			unix.Umask(0)
			chrooted := false
			if moveRoot {
				switch err := chrootHere(); {
				case err == nil:
					chrooted = true
				case !errors.Is(err, unix.EPERM):
					return os.NewSyscallError("chroot", err)
				}
			}
			return f(chrooted)
		}()
	}()
	return <-errc
}

// chrootHere moves the calling thread's root to its working directory.
//
// N.B. chroot(2) takes a path; "." is the working directory inDir just set
// from a pinned descriptor, on a thread whose filesystem state is its own
// and is thrown away with it. nopath_test.go allows this call.
func chrootHere() error {
	return unix.Chroot(".")
}

// ConnectIn connects a new socket of type typ to the socket file name in
// dir, and reports the errno connect(2) gave (0 when it connected).
func ConnectIn(dir int, name string, typ int) (syscall.Errno, error) {
	var errno syscall.Errno
	err := inDir(dir, false, func(bool) error {
		fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
		if err != nil {
			return os.NewSyscallError("socket", err)
		}
		if err := unix.Connect(fd, &unix.SockaddrUnix{Name: name}); err != nil {
			errno = errnoOf(err)
		}
		unix.Close(fd)
		return nil
	})
	return errno, err
}
