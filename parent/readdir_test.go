//go:build linux

package parent_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/hostile"
	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/parent"
	"github.com/privsep-go/privsep/policy"
	"github.com/privsep-go/privsep/protocol"
)

const secDirs = "parent: directory descriptors and listings"

// treeConfig is a Config with one tree rule for root: dirs=yes or not.
func treeConfig(t *testing.T, root string, dirs, fallback bool) parent.Config {
	t.Helper()
	if !dirs {
		return parent.Config{Rules: []string{root + "/"}, DisableOpenat2: fallback}
	}
	pol, err := policy.ParseLines([]string{root + "/ dirs=yes"})
	testutil.Must(t, err)
	return parent.Config{Policy: pol, DisableOpenat2: fallback}
}

// bigDir makes root/big with n entries whose names are long enough that a
// listing takes several replies.
func bigDir(t *testing.T, root string, n int) (string, map[string]bool) {
	t.Helper()
	big := filepath.Join(root, "big")
	testutil.Must(t, os.MkdirAll(big, 0o755))
	names := map[string]bool{}
	for i := range n {
		name := fmt.Sprintf("%05d-%s", i, strings.Repeat("x", 200))
		names[name] = true
		if i%100 == 0 {
			testutil.Must(t, os.Mkdir(filepath.Join(big, name), 0o755))
			continue
		}
		testutil.Must(t, os.WriteFile(filepath.Join(big, name), nil, 0o644))
	}
	return big, names
}

func isDirRefusal(err error) bool {
	var re *parent.RefusedError
	return errors.As(err, &re) && re.Reason == protocol.ReasonDirectory &&
		errors.Is(err, parent.ErrDenied) && errors.Is(err, fs.ErrPermission) && errors.Is(err, syscall.EACCES)
}

// TestHostileDirectoryOpens performs, through the parent's API, the opens
// a parent after a directory descriptor would make: Open of a tree rule's
// directory and of an exact rule that names one, and the same in a batch.
// Without dirs=yes each is refused with ReasonDirectory (matching ErrDenied,
// fs.ErrPermission and EACCES); with it the descriptor comes. Descriptors
// are counted on both sides.
func TestHostileDirectoryOpens(t *testing.T) {
	for _, dirs := range []bool{false, true} {
		t.Run(fmt.Sprintf("dirs=%v", dirs), func(t *testing.T) {
			root, _ := tree(t)
			testutil.Must(t, os.Mkdir(filepath.Join(root, "named"), 0o755))
			opt := ""
			if dirs {
				opt = " dirs=yes"
			}
			pol, err := policy.ParseLines([]string{root + "/" + opt, root + "/named" + opt})
			testutil.Must(t, err)
			o := start(t, parent.Config{Policy: pol})
			pid := o.PID()
			mine, theirs := testutil.FDs(t, 0), testutil.FDs(t, pid)
			ctx := context.Background()
			for _, c := range []struct {
				name, path string
				flag       int
			}{
				{"tree root", root, os.O_RDONLY},
				{"exact rule naming a directory, O_DIRECTORY", root + "/named", os.O_RDONLY | unix.O_DIRECTORY},
			} {
				f, err := o.Open(ctx, c.path, c.flag, 0)
				got := fmt.Sprint(err)
				var re *parent.RefusedError
				if errors.As(err, &re) {
					got = re.Error() // without the path, which differs from run to run
				}
				if f != nil {
					got = "a descriptor"
					f.Close()
				}
				want := "refused: a directory, and the rule does not hand out directory descriptors (dirs=yes)"
				if dirs {
					want = "a descriptor"
				}
				if dirs != (f != nil) || !dirs && !isDirRefusal(err) {
					t.Errorf("%s: got %v, want %s", c.name, err, want)
				}
				hostile.Row(t, secDirs, fmt.Sprintf("Open of a directory (%s), dirs=%v", c.name, dirs), want, got)
			}
			res, err := o.OpenBatch(ctx, []parent.Request{{Path: root}, {Path: root + "/named", Flag: unix.O_DIRECTORY}, {Path: root + "/a.txt"}})
			testutil.Must(t, err)
			for i, r := range res {
				if r.File != nil {
					r.File.Close()
				}
				wantFile := i == 2 || dirs
				if (r.File != nil) != wantFile || !wantFile && !isDirRefusal(r.Err) {
					t.Errorf("batch item %d: got %v, %v", i, r.File, r.Err)
				}
			}
			// Listing needs no dirs=yes, either way.
			ents, err := o.ReadDir(ctx, root+"/named")
			if err != nil || len(ents) != 0 {
				t.Errorf("ReadDir of the exact rule's directory: %v, %v", ents, err)
			}
			if m, t2 := testutil.FDs(t, 0), testutil.FDsSettled(t, pid, theirs); m != mine || t2 != theirs {
				t.Errorf("descriptors: parent %d → %d, opener %d → %d", mine, m, theirs, t2)
			}
		})
	}
}

// TestHostileReadDirListing lists a directory that takes several replies, with
// Opener.ReadDir and through the FS a few entries at a time, then removes
// it halfway through a listing: every entry comes exactly once, the
// removal fails the listing with ENOENT, and no descriptor is left on
// either side.
func TestHostileReadDirListing(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", fallback), func(t *testing.T) {
			root := t.TempDir()
			const n = 1500
			big, names := bigDir(t, root, n)
			o := start(t, treeConfig(t, root, false, fallback))
			pid := o.PID()
			mine, theirs := testutil.FDs(t, 0), testutil.FDs(t, pid)
			ctx := context.Background()

			ents, err := o.ReadDir(ctx, big)
			testutil.Must(t, err)
			seen := map[string]int{}
			for _, e := range ents {
				seen[e.Name]++
				if want := fs.FileMode(0); strings.HasSuffix(e.Name, "00-"+strings.Repeat("x", 200)) {
					want = fs.ModeDir
					if e.Type != want {
						t.Errorf("%.10s: type %v, want %v", e.Name, e.Type, want)
					}
				} else if e.Type != want {
					t.Errorf("%.10s: type %v, want %v", e.Name, e.Type, want)
				}
			}
			for name := range names {
				if seen[name] != 1 {
					t.Errorf("%.10s listed %d times", name, seen[name])
				}
			}
			if len(seen) != n {
				t.Errorf("ReadDir: %d names, want %d", len(seen), n)
			}

			// Through the FS, 7 at a time: the opener is asked for the
			// next reply only when those at hand are used up.
			fsys := o.FS(root)
			f, err := fsys.Open("big")
			testutil.Must(t, err)
			if _, ok := f.(*os.File); ok {
				t.Fatalf("Open of a directory without dirs=yes returned its descriptor")
			}
			info, err := f.Stat()
			if err != nil || !info.IsDir() || info.Name() != "big" {
				t.Errorf("Stat of the listed directory: %v, %v", info, err)
			}
			d := f.(fs.ReadDirFile)
			got := 0
			for {
				batch, err := d.ReadDir(7)
				got += len(batch)
				if err == io.EOF {
					break
				}
				testutil.Must(t, err)
				if len(batch) == 0 || len(batch) > 7 {
					t.Fatalf("ReadDir(7): %d entries, nil error", len(batch))
				}
			}
			if got != n {
				t.Errorf("ReadDir(7) until EOF: %d entries, want %d", got, n)
			}
			testutil.Must(t, f.Close())

			// Removed midway: the first reply is in hand, the next fails.
			f, err = fsys.Open("big")
			testutil.Must(t, err)
			d = f.(fs.ReadDirFile)
			first, err := d.ReadDir(1)
			testutil.Must(t, err)
			testutil.Must(t, os.RemoveAll(big))
			rest, err := d.ReadDir(-1)
			testutil.Must(t, f.Close())
			want := "an error matching ENOENT after the first reply's entries"
			gotS := fmt.Sprintf("%d+%d entries, %v", len(first), len(rest), err)
			if !errors.Is(err, fs.ErrNotExist) || len(first)+len(rest) >= n {
				t.Errorf("listing a directory removed midway: got %s, want %s", gotS, want)
			}
			hostile.Row(t, secDirs, fmt.Sprintf("FS listing of %d entries, directory removed after the first reply, fallback=%v", n, fallback),
				want+"; fds unchanged on both sides", gotS)
			if m, t2 := testutil.FDs(t, 0), testutil.FDsSettled(t, pid, theirs); m != mine || t2 != theirs {
				t.Errorf("descriptors: parent %d → %d, opener %d → %d", mine, m, theirs, t2)
			}
		})
	}
}

// TestReadDirRefusals: ReadDir is refused as an open of the directory
// would be, with op "readdir".
func TestReadDirRefusals(t *testing.T) {
	root, secret := tree(t)
	o := start(t, parent.Config{Rules: []string{root + "/"}})
	ctx := context.Background()
	for _, c := range []struct {
		path   string
		target error
	}{
		{filepath.Dir(secret), parent.ErrDenied},
		{root + "/a.txt", syscall.ENOTDIR},
		{root + "/missing", fs.ErrNotExist},
		{root + "/./a.txt", syscall.EINVAL},
		{"relative", syscall.EINVAL},
	} {
		ents, err := o.ReadDir(ctx, c.path)
		var pe *fs.PathError
		if ents != nil || !errors.As(err, &pe) || pe.Op != "readdir" || !errors.Is(err, c.target) {
			t.Errorf("ReadDir(%q): got %v, %v; want a readdir error matching %v", c.path, ents, err, c.target)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := o.ReadDir(cctx, root); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadDir with a cancelled context: %v", err)
	}
}
