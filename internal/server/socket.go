//go:build linux

package server

import (
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/opener"
	"github.com/privsep-go/privsep/policy"
)

// ListenSocket makes a listening socket file for Serve; child.ListenSocket
// documents it.
func ListenSocket(path string, mode os.FileMode, gid int) (*Socket, error) {
	fail := func(err error) (*Socket, error) {
		return nil, &os.PathError{Op: "listen", Path: path, Err: err}
	}
	if mode&^os.ModePerm != 0 {
		return fail(fmt.Errorf("mode %v has bits other than permissions", mode))
	}
	if err := policy.CheckListenAddr("unix", path); err != nil {
		return fail(err)
	}
	dirPath, name := opener.SplitSocketPath(path)
	dir, err := pinSocketDir(dirPath)
	if err != nil {
		return fail(err)
	}
	defer unix.Close(dir)
	var dst unix.Stat_t
	if err := unix.Fstat(dir, &dst); err != nil {
		return fail(os.NewSyscallError("fstat", err))
	}
	fd, st, err := opener.MakeSocket(opener.SocketSpec{
		Dir: dir, DirPath: dirPath, Name: name, Type: unix.SOCK_SEQPACKET,
		Mode: uint32(mode), UID: -1, GID: gid, Replace: replaceStale,
	})
	if err != nil {
		return fail(err)
	}
	if err := unix.Listen(fd, opener.ListenBacklog); err != nil {
		unix.Close(fd)
		return fail(os.NewSyscallError("listen", err))
	}
	f := os.NewFile(uintptr(fd), path)
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return fail(err)
	}
	return &Socket{UnixListener: ln.(*net.UnixListener), Path: path, dev: uint64(st.Dev), ino: uint64(st.Ino), dirDev: uint64(dst.Dev), dirIno: uint64(dst.Ino)}, nil
}

// pinSocketDir resolves a server socket's directory from the root, as the
// opener resolves rule directories.
func pinSocketDir(dirPath string) (int, error) {
	root, err := opener.PinRoot()
	if err != nil {
		return -1, err
	}
	defer unix.Close(root)
	fd, err := opener.ResolveDir(root, dirPath, opener.HaveOpenat2(root))
	if err != nil {
		return -1, fmt.Errorf("directory %s: %w", dirPath, err)
	}
	return fd, nil
}

// replaceStale allows replacing a stale socket, and nothing else. The
// candidate is in the private directory pdir, as pname.
func replaceStale(pdir int, pname string, st *unix.Stat_t) error {
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return errors.New("exists and is not a socket; refusing to replace it")
	}
	errno, err := opener.ConnectIn(pdir, pname, unix.SOCK_SEQPACKET)
	switch {
	case err != nil:
		return fmt.Errorf("checking whether the socket is stale: %w", err)
	case errno == unix.ECONNREFUSED:
		return nil // stale: its server is gone
	case errno == 0 || errno == unix.EAGAIN || errno == unix.EPROTOTYPE:
		// Someone answers (or a listener of another socket type).
		return errors.New("a server is listening on this socket already (in use)")
	}
	return fmt.Errorf("checking whether the socket is stale: %w", os.NewSyscallError("connect", errno))
}

// Remove removes the socket file if it is still the one ListenSocket made,
// in the directory it was made in.
func (s *Socket) Remove() error {
	dirPath, name := opener.SplitSocketPath(s.Path)
	dir, err := pinSocketDir(dirPath)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return &os.PathError{Op: "remove", Path: s.Path, Err: err}
	}
	defer unix.Close(dir)
	var dst, st unix.Stat_t
	if err := unix.Fstat(dir, &dst); err != nil {
		return &os.PathError{Op: "remove", Path: s.Path, Err: os.NewSyscallError("fstat", err)}
	}
	if uint64(dst.Dev) != s.dirDev || uint64(dst.Ino) != s.dirIno {
		return nil // not the directory it was made in
	}
	if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return &os.PathError{Op: "remove", Path: s.Path, Err: os.NewSyscallError("fstatat", err)}
	}
	if uint64(st.Dev) != s.dev || uint64(st.Ino) != s.ino {
		return nil // someone else's now
	}
	if err := unix.Unlinkat(dir, name, 0); err != nil && err != unix.ENOENT {
		return &os.PathError{Op: "remove", Path: s.Path, Err: os.NewSyscallError("unlinkat", err)}
	}
	return nil
}
