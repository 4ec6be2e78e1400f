//go:build linux

package testutil

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDialAsPeerCred: the server sees the uid DialAs connected as, and the
// test's thread is root again afterwards.
func TestDialAsPeerCred(t *testing.T) {
	NeedRoot(t, "changing this thread's uid")
	const uid = 65534
	sock := filepath.Join(PublicDir(t, "dialas"), "s")
	ln, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	Must(t, err)
	t.Cleanup(func() { unix.Close(ln) })
	Must(t, unix.Bind(ln, &unix.SockaddrUnix{Name: sock}))
	Must(t, os.Chmod(sock, 0o777))
	Must(t, unix.Listen(ln, 1))

	fd := DialAs(t, sock, uid)
	defer unix.Close(fd)
	conn, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
	Must(t, err)
	defer unix.Close(conn)
	cred, err := unix.GetsockoptUcred(conn, unix.SOL_SOCKET, unix.SO_PEERCRED)
	Must(t, err)
	if cred.Uid != uid {
		t.Errorf("the server's SO_PEERCRED names uid %d, want %d", cred.Uid, uid)
	}
	if e := os.Geteuid(); e != 0 {
		t.Errorf("effective uid %d after DialAs, want 0", e)
	}
}
