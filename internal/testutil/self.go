package testutil

import (
	"io"
	"os"
	"testing"
)

// CopySelf copies the running test binary to dst, mode 0755, and returns
// dst: a test binary in a directory another user can reach, for that user
// to run (the build directory is the builder's only).
func CopySelf(t testing.TB, dst string) string {
	t.Helper()
	exe, err := os.Executable()
	Must(t, err)
	src, err := os.Open(exe)
	Must(t, err)
	defer src.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	Must(t, err)
	if _, err := io.Copy(out, src); err != nil {
		out.Close()
		t.Fatalf("copying %s to %s: %v", exe, dst, err)
	}
	Must(t, out.Close())
	return dst
}
