package testutil

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// TestListenLoopback: a connection to the address is accepted.
func TestListenLoopback(t *testing.T) {
	c, err := net.Dial("tcp4", ListenLoopback(t))
	Must(t, err)
	c.Close()
}

// TestCopySelf: the copy is the test binary, executable.
func TestCopySelf(t *testing.T) {
	exe, err := os.Executable()
	Must(t, err)
	want, err := os.Stat(exe)
	Must(t, err)
	got, err := os.Stat(CopySelf(t, filepath.Join(t.TempDir(), "self")))
	Must(t, err)
	if got.Size() != want.Size() || got.Mode().Perm() != 0o755 {
		t.Errorf("the copy: %d bytes, mode %v; want %d bytes, mode 0755", got.Size(), got.Mode().Perm(), want.Size())
	}
}
