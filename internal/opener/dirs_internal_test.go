//go:build linux

package opener

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/privsep-go/privsep/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestResolveDirWalkAgrees: the walk without openat2 resolves what
// openat2 RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS resolves, symlinks (the
// policy author's) and ".." included, and fails where it fails.
func TestResolveDirWalkAgrees(t *testing.T) {
	root, err := PinRoot()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(root)
	if !HaveOpenat2(root) {
		t.Skip("no openat2 to compare with")
	}
	dir := t.TempDir()
	testutil.Must(t, os.MkdirAll(filepath.Join(dir, "a/b"), 0o755))
	testutil.Must(t, os.Symlink("a/b", filepath.Join(dir, "rel")))
	testutil.Must(t, os.Symlink(filepath.Join(dir, "a"), filepath.Join(dir, "abs")))
	testutil.Must(t, os.Symlink("../../../../../../../../../../..", filepath.Join(dir, "up")))
	testutil.Must(t, os.Symlink("loop2", filepath.Join(dir, "loop1")))
	testutil.Must(t, os.Symlink("loop1", filepath.Join(dir, "loop2")))
	testutil.Must(t, os.Symlink("/proc/self/cwd", filepath.Join(dir, "magic")))
	testutil.Must(t, os.WriteFile(filepath.Join(dir, "file"), nil, 0o644))
	for _, p := range []string{
		dir, dir + "/a/b", dir + "/rel", dir + "/abs/b", dir + "/up", dir + "/up" + dir + "/rel",
		dir + "/a/b/../b", dir + "/loop1", dir + "/magic", dir + "/file", dir + "/missing", "/", "/proc/self",
		"/proc/self/cwd",
	} {
		fd1, err1 := ResolveDir(root, p, true)
		fd2, err2 := ResolveDir(root, p, false)
		if (err1 == nil) != (err2 == nil) || errnoOf(err1) != errnoOf(err2) {
			t.Errorf("%s: openat2 says %v, the walk says %v", p, err1, err2)
		}
		if err1 == nil && err2 == nil {
			var st1, st2 unix.Stat_t
			testutil.Must(t, unix.Fstat(fd1, &st1))
			testutil.Must(t, unix.Fstat(fd2, &st2))
			if st1.Dev != st2.Dev || st1.Ino != st2.Ino {
				t.Errorf("%s: openat2 and the walk resolve to different directories", p)
			}
		}
		if err1 == nil {
			unix.Close(fd1)
		}
		if err2 == nil {
			unix.Close(fd2)
		}
	}
}
