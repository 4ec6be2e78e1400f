package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// NeedRoot skips the test unless it runs as root; what says what needs it,
// for the skip message.
func NeedRoot(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: " + what)
	}
}

// TempDir makes a directory directly in os.TempDir, removed when the test
// ends. Its path is short (t.TempDir's carries the test's name), so that a
// socket path in it fits sockaddr_un; like t.TempDir's it is mode 0700.
func TempDir(t testing.TB, prefix string) string {
	t.Helper()
	d, err := os.MkdirTemp("", prefix)
	Must(t, err)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// PublicDir is TempDir of mode 0755, which any user can reach (t.TempDir's
// parent is 0700): in it, a file's own mode decides who may open it. It
// skips the test when an unprivileged user could not reach it, or could not
// reach one of also (say, the directory of a binary that user must run).
func PublicDir(t testing.TB, prefix string, also ...string) string {
	t.Helper()
	d := TempDir(t, prefix)
	Must(t, os.Chmod(d, 0o755))
	for _, dir := range append([]string{d}, also...) {
		if err := WorldTraversable(dir); err != nil {
			t.Skipf("an unprivileged user could not reach the test files: %v", err)
		}
	}
	return d
}

// WorldTraversable reports, as an error naming the first that is not, whether
// every directory from dir up to / can be searched by a user that owns none
// of them.
func WorldTraversable(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s is mode %v, not searchable by others", d, st.Mode().Perm())
		}
		if d == "/" {
			return nil
		}
	}
}

// TempFile writes data to a file of mode 0644 in a fresh t.TempDir and
// returns its path.
func TempFile(t testing.TB, data string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "f")
	Must(t, os.WriteFile(f, []byte(data), 0o644))
	return f
}
