//go:build linux

package parent_test

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/parent"
)

// bigSize is the size of the large file in fsTree: many times any buffer
// on the way (io.Copy's, http's). fstest.TestFS reads a file a few bytes at
// a time, which takes a few seconds for this one.
const bigSize = 2<<20 + 12345

// fsTree makes a tree for the FS tests and returns its root and the list
// of everything in it, as fstest.TestFS expects it:
//
//	root/index.html          a page
//	root/empty               an empty file
//	root/big.bin             bigSize bytes of noise (withBig only)
//	root/sub/b.txt           "beta"
//	root/sub/deeper/c.txt    "gamma"
//	root/emptydir/           an empty directory
//	root/tmpl/base.tmpl      templates for template.ParseFS
//	root/tmpl/page.tmpl
//	root/link -> sub/b.txt   a symlink that stays inside (withLink only)
//	secret                   "secret", beside root, never served
//
// Nothing in it escapes the tree; escapes adds what does.
func fsTree(t *testing.T, withLink, withBig bool) (root string, files []string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "root")
	for _, d := range []string{"sub/deeper", "emptydir", "tmpl"} {
		testutil.Must(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	content := map[string]string{
		"index.html":       "<html><body>hello from the opener</body></html>\n",
		"empty":            "",
		"big.bin":          string(bigData()),
		"sub/b.txt":        "beta",
		"sub/deeper/c.txt": "gamma",
		"tmpl/base.tmpl":   `{{define "base"}}<p>{{template "body" .}}</p>{{end}}`,
		"tmpl/page.tmpl":   `{{define "body"}}Hello, {{.}}!{{end}}`,
	}
	if !withBig {
		delete(content, "big.bin")
	}
	for name, data := range content {
		testutil.Must(t, os.WriteFile(filepath.Join(root, name), []byte(data), 0o644))
		files = append(files, name)
	}
	files = append(files, "sub", "sub/deeper", "emptydir", "tmpl")
	if withLink {
		testutil.Must(t, os.Symlink("sub/b.txt", filepath.Join(root, "link")))
		files = append(files, "link")
	}
	testutil.Must(t, os.WriteFile(filepath.Join(base, "secret"), []byte("secret"), 0o644))
	slices.Sort(files)
	return root, files
}

// bigData is the content of big.bin: the same noise every time.
func bigData() []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, bigSize)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// escapes adds to root, made by fsTree, entries that are listed but that
// the opener refuses to open: two symlinks that leave the tree and a FIFO.
func escapes(t *testing.T, root string) []string {
	t.Helper()
	testutil.Must(t, os.Symlink("/etc/passwd", filepath.Join(root, "out")))
	testutil.Must(t, os.Symlink("../../secret", filepath.Join(root, "sub", "up")))
	testutil.Must(t, unix.Mkfifo(filepath.Join(root, "fifo"), 0o644))
	return []string{"fifo", "out", "sub/up"}
}

// checkPathError checks that err is an *fs.PathError for op and name that
// matches every target.
func checkPathError(t *testing.T, err error, op, name string, targets ...error) {
	t.Helper()
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Op != op || pe.Path != name {
		t.Errorf("%s %q: got %#v (%v), want an *fs.PathError for op %q and path %q", op, name, err, err, op, name)
		return
	}
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Errorf("%s %q: %v does not match %v", op, name, err, target)
		}
	}
}

// TestFS runs testing/fstest.TestFS over an FS, with openat2 and with the
// opener's fallback, which follows no symlink at all (so the tree has the
// inside symlink only with openat2). The large file is read with openat2
// only, and not with -short: how a file was opened does not change how it
// reads, and fstest takes seconds over it (as it does over os.DirFS).
//
// TestFS opens every entry it lists, so it would fail on the entries that
// the opener rightly refuses: a symlink that escapes the tree, or a FIFO.
// The tree it checks therefore has none; they are added afterwards and
// checked on their own: listed, with their own type and Info, but never
// served.
func TestFS(t *testing.T) {
	for _, c := range []struct{ fallback, dirs bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		fallback := c.fallback
		t.Run(fmt.Sprintf("fallback=%v,dirs=%v", fallback, c.dirs), func(t *testing.T) {
			root, files := fsTree(t, !fallback, !fallback && !c.dirs && !testing.Short())
			o := start(t, treeConfig(t, root, c.dirs, fallback))
			fsys := o.FS(root)
			if err := fstest.TestFS(fsys, files...); err != nil {
				t.Fatal(err)
			}
			for _, iface := range []struct {
				name string
				ok   bool
			}{
				{"fs.ReadDirFS", is[fs.ReadDirFS](fsys)},
				{"fs.ReadFileFS", is[fs.ReadFileFS](fsys)},
				{"fs.StatFS", is[fs.StatFS](fsys)},
				{"fs.SubFS", is[fs.SubFS](fsys)},
			} {
				if !iface.ok {
					t.Errorf("FS does not implement %s", iface.name)
				}
			}

			// Now the entries that must not be served.
			bad := escapes(t, root)
			for _, name := range bad {
				ents, err := fs.ReadDir(fsys, path.Dir(name))
				if err != nil {
					t.Fatal(err)
				}
				i := slices.IndexFunc(ents, func(e fs.DirEntry) bool { return e.Name() == path.Base(name) })
				if i < 0 {
					t.Errorf("%s is not listed in %v", name, ents)
					continue
				}
				e := ents[i]
				lst, err := os.Lstat(filepath.Join(root, name))
				testutil.Must(t, err)
				if e.Type() != lst.Mode().Type() {
					t.Errorf("%s: entry type %v, want %v (its own)", name, e.Type(), lst.Mode().Type())
				}
				info, err := e.Info()
				if c.dirs {
					// fstatat on the directory's descriptor.
					if err != nil || info.Mode() != lst.Mode() || info.Size() != lst.Size() || info.Name() != path.Base(name) {
						t.Errorf("%s: entry Info = %v, %v; want the entry's own (%v, size %d)", name, info, err, lst.Mode(), lst.Size())
					}
				} else if err != nil || info.Mode() != lst.Mode().Type() || info.Size() != 0 || !info.ModTime().IsZero() || info.Name() != path.Base(name) {
					// Listed by the opener: the type and nothing else.
					t.Errorf("%s: entry Info = %v, %v; want its type (%v) alone", name, info, err, lst.Mode().Type())
				}
				f, err := fsys.Open(name)
				if err == nil {
					f.Close()
				}
				checkPathError(t, err, "open", name, parent.ErrDenied, fs.ErrPermission)
				_, err = fs.Stat(fsys, name)
				checkPathError(t, err, "stat", name, parent.ErrDenied, fs.ErrPermission)
				b, err := fs.ReadFile(fsys, name)
				checkPathError(t, err, "readfile", name, parent.ErrDenied, fs.ErrPermission)
				if bytes.Contains(b, []byte("secret")) || bytes.Contains(b, []byte("root:")) {
					t.Errorf("%s: read %q through an escaping symlink", name, b)
				}
			}
			// And fstest agrees that a tree with such an entry is not one it
			// accepts: this is why the escapes are left out above. (sub is
			// small: fstest over big.bin again would take seconds.)
			sub, err := fs.Sub(fsys, "sub")
			testutil.Must(t, err)
			if err := fstest.TestFS(sub, "b.txt", "deeper", "deeper/c.txt", "up"); err == nil || !strings.Contains(err.Error(), "up") {
				t.Errorf("fstest.TestFS over sub, with the escaping sub/up: got %v, want a failure naming it", err)
			}
		})
	}
}

func is[T any](v any) bool {
	_, ok := v.(T)
	return ok
}

func TestFSNames(t *testing.T) {
	for _, dirs := range []bool{false, true} {
		t.Run(fmt.Sprintf("dirs=%v", dirs), func(t *testing.T) { testFSNames(t, dirs) })
	}
}

func testFSNames(t *testing.T, dirs bool) {
	root, _ := fsTree(t, true, false)
	o := start(t, treeConfig(t, root, dirs, false))
	fsys := o.FS(root)
	// Each method, by the op its errors carry.
	methods := map[string]func(name string) error{
		"open": func(name string) error {
			f, err := fsys.Open(name)
			if err == nil {
				f.Close()
			}
			return err
		},
		"stat":     func(name string) error { _, err := fsys.(fs.StatFS).Stat(name); return err },
		"readdir":  func(name string) error { _, err := fsys.(fs.ReadDirFS).ReadDir(name); return err },
		"readfile": func(name string) error { _, err := fsys.(fs.ReadFileFS).ReadFile(name); return err },
		"sub":      func(name string) error { _, err := fsys.(fs.SubFS).Sub(name); return err },
	}
	invalid := []string{"", "/", "/index.html", root + "/index.html", "./index.html", "index.html/",
		"sub/", "sub//b.txt", "sub/./b.txt", "..", "../root/index.html", "sub/../index.html", "a\x00b"}
	for op, call := range methods {
		for _, name := range invalid {
			checkPathError(t, call(name), op, name, fs.ErrInvalid)
		}
		if op == "sub" {
			continue
		}
		for _, name := range []string{"missing", "sub/missing", "missing/b.txt"} {
			err := call(name)
			checkPathError(t, err, op, name, fs.ErrNotExist)
			if errors.Is(err, parent.ErrDenied) {
				t.Errorf("%s %q: %v matches ErrDenied", op, name, err)
			}
			if strings.Contains(err.Error(), root) {
				t.Errorf("%s %q: %q shows the absolute path", op, name, err)
			}
		}
	}
	// A file is not a directory, and a directory is not a file to read.
	_, err := fsys.(fs.ReadDirFS).ReadDir("index.html")
	checkPathError(t, err, "readdir", "index.html", syscall.ENOTDIR)
	_, err = fs.ReadFile(fsys, "sub")
	checkPathError(t, err, "readfile", "sub", syscall.EISDIR)
	f, err := fsys.Open("sub")
	testutil.Must(t, err)
	if _, err := f.Read(make([]byte, 1)); !errors.Is(err, syscall.EISDIR) {
		t.Errorf("reading the directory sub: %v, want EISDIR", err)
	}
	testutil.Must(t, f.Close())
	if err := f.Close(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("second Close: %v, want fs.ErrClosed", err)
	}

	// The root's name is ".", as for os.DirFS.
	info, err := fs.Stat(fsys, ".")
	if err != nil || info.Name() != "." || !info.IsDir() {
		t.Errorf(`Stat("."): %v, %v; want a directory named "."`, info, err)
	}
	// A Sub names its root "." too, and is the tree beneath.
	sub, err := fs.Sub(fsys, "sub")
	testutil.Must(t, err)
	if info, err := fs.Stat(sub, "."); err != nil || info.Name() != "." {
		t.Errorf(`Sub("sub"): Stat("."): %v, %v`, info, err)
	}
	if b, err := fs.ReadFile(sub, "deeper/c.txt"); err != nil || string(b) != "gamma" {
		t.Errorf(`Sub("sub"): ReadFile("deeper/c.txt"): %q, %v`, b, err)
	}
	// Entries' Info comes with a *syscall.Stat_t, as from os, except a
	// directory's when the rule keeps its descriptor back.
	ents, err := fs.ReadDir(fsys, "sub")
	testutil.Must(t, err)
	for _, e := range ents {
		info, err := e.Info()
		if !dirs && e.IsDir() {
			if err != nil || info.Sys() != nil || info.Mode() != fs.ModeDir {
				t.Errorf("sub/%s: Info() = %v, %v; want a directory and nothing more", e.Name(), info, err)
			}
			continue
		}
		testutil.Must(t, err)
		st, ok := info.Sys().(*syscall.Stat_t)
		var want syscall.Stat_t
		testutil.Must(t, syscall.Lstat(filepath.Join(root, "sub", e.Name()), &want))
		if !ok || st.Ino != want.Ino || st.Uid != want.Uid || st.Mode != want.Mode {
			t.Errorf("sub/%s: Info().Sys() = %#v, want %#v", e.Name(), info.Sys(), want)
		}
	}
}

// The root "/" joins as "/"+name, never "//name".
func TestFSSlashRoot(t *testing.T) {
	root, _ := fsTree(t, false, false)
	o := start(t, parent.Config{Rules: []string{"/"}})
	fsys := o.FS("/")
	name := strings.TrimPrefix(root, "/") + "/sub/b.txt"
	if b, err := fs.ReadFile(fsys, name); err != nil || string(b) != "beta" {
		t.Errorf("ReadFile(%q): %q, %v", name, b, err)
	}
	if info, err := fs.Stat(fsys, "."); err != nil || !info.IsDir() || info.Name() != "." {
		t.Errorf(`Stat("."): %v, %v`, info, err)
	}
	sub, err := fs.Sub(fsys, strings.TrimPrefix(root, "/"))
	testutil.Must(t, err)
	if b, err := fs.ReadFile(sub, "sub/deeper/c.txt"); err != nil || string(b) != "gamma" {
		t.Errorf("Sub: ReadFile: %q, %v", b, err)
	}
}

func TestFSBadRoot(t *testing.T) {
	root, _ := fsTree(t, false, false)
	o := start(t, parent.Config{Rules: []string{root + "/"}})
	for _, bad := range []string{"", "relative", root + "/", root + "/.", root + "/sub/..", root + "//sub", root + "\x00"} {
		fsys := o.FS(bad)
		for _, name := range []string{".", "index.html", "sub/b.txt"} {
			f, err := fsys.Open(name)
			if err == nil {
				f.Close()
			}
			checkPathError(t, err, "open", name, fs.ErrInvalid)
			if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("FS root %q", bad)) {
				t.Errorf("FS(%q).Open(%q): %q does not name the root", bad, name, err)
			}
			_, err = fs.ReadDir(fsys, name)
			checkPathError(t, err, "readdir", name, fs.ErrInvalid)
			_, err = fs.ReadFile(fsys, name)
			checkPathError(t, err, "readfile", name, fs.ErrInvalid)
			_, err = fs.Stat(fsys, name)
			checkPathError(t, err, "stat", name, fs.ErrInvalid)
		}
		// A Sub of a bad FS is as bad.
		sub, err := fs.Sub(fsys, "sub")
		testutil.Must(t, err)
		_, err = fs.ReadFile(sub, "b.txt")
		if !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("FS(%q): Sub: ReadFile: %v, want fs.ErrInvalid", bad, err)
		}
	}
}

// The policy decides, not the FS's root: an FS over a directory no rule
// allows is refused, and one whose rules allow part of it serves that part.
func TestFSDeniedRoot(t *testing.T) {
	root, _ := fsTree(t, false, false)
	o := start(t, parent.Config{Rules: []string{root + "/sub/", root + "/index.html"}})
	fsys := o.FS(root)
	f, err := fsys.Open(".")
	if err == nil {
		f.Close()
	}
	checkPathError(t, err, "open", ".", parent.ErrDenied, fs.ErrPermission)
	_, err = fs.ReadDir(fsys, ".")
	checkPathError(t, err, "readdir", ".", parent.ErrDenied, fs.ErrPermission)
	_, err = fs.Stat(fsys, "tmpl")
	checkPathError(t, err, "stat", "tmpl", parent.ErrDenied, fs.ErrPermission)
	_, err = fs.ReadFile(fsys, "empty")
	checkPathError(t, err, "readfile", "empty", parent.ErrDenied, fs.ErrPermission)
	err = fs.WalkDir(fsys, ".", func(_ string, _ fs.DirEntry, err error) error { return err })
	// WalkDir's first step is Stat; a refused root ends the walk there.
	checkPathError(t, err, "stat", ".", parent.ErrDenied)

	if b, err := fs.ReadFile(fsys, "index.html"); err != nil || !strings.Contains(string(b), "hello") {
		t.Errorf("ReadFile(index.html), allowed by an exact rule: %q, %v", b, err)
	}
	sub, err := fs.Sub(fsys, "sub")
	testutil.Must(t, err)
	if err := fstest.TestFS(sub, "b.txt", "deeper", "deeper/c.txt"); err != nil {
		t.Errorf("the allowed subtree: %v", err)
	}
	// A dead opener fails every call with its exit status.
	p, _ := os.FindProcess(o.PID())
	defer p.Release() // FindProcess holds a pidfd; later tests count descriptors
	testutil.Must(t, p.Kill())
	<-o.Done()
	_, err = fs.ReadFile(fsys, "index.html")
	var ee *parent.ExitError
	if !errors.As(err, &ee) {
		t.Errorf("after the opener died: %v, want an *ExitError", err)
	}
	checkPathError(t, err, "readfile", "index.html")
}

func TestFSHTTP(t *testing.T) {
	root, _ := fsTree(t, true, true)
	escapes(t, root)
	o := start(t, parent.Config{Rules: []string{root + "/"}})
	srv := httptest.NewServer(http.FileServer(http.FS(o.FS(root))))
	defer srv.Close()
	get := func(path string, header ...string) (int, string) {
		t.Helper()
		req, err := http.NewRequest("GET", srv.URL+path, nil)
		testutil.Must(t, err)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := srv.Client().Do(req)
		testutil.Must(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		testutil.Must(t, err)
		return resp.StatusCode, string(b)
	}
	page, err := os.ReadFile(filepath.Join(root, "index.html"))
	testutil.Must(t, err)
	for _, path := range []string{"/", "/index.html"} {
		if code, body := get(path); code != 200 || body != string(page) {
			t.Errorf("GET %s: %d %q, want 200 and index.html", path, code, body)
		}
	}
	if code, body := get("/sub/b.txt"); code != 200 || body != "beta" {
		t.Errorf("GET /sub/b.txt: %d %q", code, body)
	}
	if code, body := get("/link"); code != 200 || body != "beta" {
		t.Errorf("GET /link (inside symlink): %d %q", code, body)
	}
	// A directory listing: every entry's Info, the escaping one included.
	if code, body := get("/sub/"); code != 200 || !strings.Contains(body, `href="b.txt"`) || !strings.Contains(body, `href="deeper/"`) || !strings.Contains(body, `href="up"`) {
		t.Errorf("GET /sub/: %d %q, want a listing", code, body)
	}
	big := bigData()
	if code, body := get("/big.bin"); code != 200 || body != string(big) {
		t.Errorf("GET /big.bin: %d, %d bytes, want 200 and %d bytes", code, len(body), len(big))
	}
	// A range needs Seek on the file.
	if code, body := get("/big.bin", "Range", "bytes=1000000-1000009"); code != 206 || body != string(big[1000000:1000010]) {
		t.Errorf("GET /big.bin bytes=1000000-1000009: %d %q", code, body)
	}
	if code, _ := get("/missing"); code != 404 {
		t.Errorf("GET /missing: %d, want 404", code)
	}
	for _, path := range []string{"/out", "/sub/up", "/fifo"} {
		if code, body := get(path); code != 403 || strings.Contains(body, "secret") || strings.Contains(body, "root:") {
			t.Errorf("GET %s: %d %q, want 403", path, code, body)
		}
	}
}

func TestFSTemplate(t *testing.T) {
	root, _ := fsTree(t, false, false)
	o := start(t, parent.Config{Rules: []string{root + "/"}})
	tmpl, err := template.ParseFS(o.FS(root), "tmpl/*.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	testutil.Must(t, tmpl.ExecuteTemplate(&b, "base", "<world>"))
	if got, want := b.String(), "<p>Hello, &lt;world&gt;!</p>"; got != want {
		t.Errorf("template: got %q, want %q", got, want)
	}
	if _, err := template.ParseFS(o.FS(root), "tmpl/missing.tmpl"); err == nil {
		t.Error("ParseFS of a pattern that matches nothing: no error")
	}
}

// A full walk, reading every file three ways and looking at everything,
// refused entries included, leaves no descriptor behind.
func TestFSDescriptors(t *testing.T) {
	root, files := fsTree(t, true, true)
	bad := escapes(t, root)
	o := start(t, parent.Config{Rules: []string{root + "/"}})
	fsys := o.FS(root)
	walk := func() (seen []string) {
		err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if name != "." {
				seen = append(seen, name)
			}
			if _, err := d.Info(); err != nil {
				t.Errorf("%s: Info: %v", name, err)
			}
			if slices.Contains(bad, name) {
				if _, err := fs.ReadFile(fsys, name); !errors.Is(err, parent.ErrDenied) {
					t.Errorf("%s: ReadFile: %v, want ErrDenied", name, err)
				}
				if _, err := fs.Stat(fsys, name); !errors.Is(err, parent.ErrDenied) {
					t.Errorf("%s: Stat: %v, want ErrDenied", name, err)
				}
				return nil
			}
			f, err := fsys.Open(name)
			if err != nil {
				t.Errorf("%s: Open: %v", name, err)
				return nil
			}
			defer f.Close()
			if _, err := f.Stat(); err != nil {
				t.Errorf("%s: File.Stat: %v", name, err)
			}
			if d.IsDir() {
				// Read it in small batches.
				rd := f.(fs.ReadDirFile)
				for {
					ents, err := rd.ReadDir(1)
					if err == io.EOF {
						break
					}
					if err != nil || len(ents) != 1 {
						t.Errorf("%s: ReadDir(1): %v, %v", name, ents, err)
						break
					}
				}
				if _, err := fs.ReadFile(fsys, name); err == nil {
					t.Errorf("%s: ReadFile of a directory worked", name)
				}
				return nil
			}
			b1, err := io.ReadAll(f)
			if err != nil {
				t.Errorf("%s: reading: %v", name, err)
			}
			b2, err := fs.ReadFile(fsys, name)
			if err != nil || !bytes.Equal(b1, b2) {
				t.Errorf("%s: ReadFile: %d bytes, %v; Open+ReadAll read %d", name, len(b2), err, len(b1))
			}
			if _, err := fs.Stat(fsys, name); err != nil {
				t.Errorf("%s: Stat: %v", name, err)
			}
			if _, err := fs.ReadDir(fsys, name); !errors.Is(err, syscall.ENOTDIR) {
				t.Errorf("%s: ReadDir of a file: %v, want ENOTDIR", name, err)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("WalkDir: %v", err)
		}
		for _, name := range []string{"missing", "sub/missing", "/bad"} {
			if _, err := fs.ReadFile(fsys, name); err == nil {
				t.Errorf("ReadFile(%q) worked", name)
			}
		}
		return seen
	}
	walk() // warm up: the runtime makes some descriptors lazily
	pid := o.PID()
	before, theirs := testutil.FDs(t, 0), testutil.FDsSettled(t, pid, -1)
	seen := walk()
	if got := testutil.FDs(t, 0); got != before {
		t.Errorf("descriptors after a full walk: %d, want %d", got, before)
	}
	if got := testutil.FDsSettled(t, pid, theirs); got != theirs {
		t.Errorf("opener descriptors after a full walk: %d, want %d", got, theirs)
	}
	want := slices.Sorted(slices.Values(append(files, bad...)))
	if !slices.Equal(seen, want) {
		t.Errorf("WalkDir saw %v, want %v", seen, want)
	}
}

// TestFSDropped serves a tree that only root may enter to a parent that
// has dropped to nobody: the parent cannot list it by path or look at its
// entries, and the FS still passes fstest.TestFS, with every entry's Info
// asked of the opener.
func TestFSDropped(t *testing.T) {
	testutil.NeedRoot(t, "dropping privileges to nobody")
	nobody(t)
	dir := testutil.PublicDir(t, "privsep-parent-test-")
	www := filepath.Join(dir, "www")
	testutil.Must(t, os.MkdirAll(filepath.Join(www, "sub"), 0o700))
	testutil.Must(t, os.Chmod(www, 0o700))
	testutil.Must(t, os.WriteFile(filepath.Join(www, "index.html"), []byte("<html>private</html>"), 0o600))
	testutil.Must(t, os.WriteFile(filepath.Join(www, "sub", "a.txt"), []byte("alpha"), 0o600))
	runRole(t, "TestHelperFS", "fs-dropped", "PRIVSEP_TEST_WWW="+www)
}

// TestHelperFS is not a test: it plays a role of fs_test.go in a
// re-executed test binary (see runRole), and does nothing otherwise.
func TestHelperFS(t *testing.T) {
	playRole(t, map[string]func(*testing.T){
		"fs-dropped": roleFSDropped,
	})
}

func roleFSDropped(t *testing.T) {
	www := os.Getenv("PRIVSEP_TEST_WWW")
	o := start(t, parent.Config{Rules: []string{www + "/"}})
	c, err := parent.LookupCredential("nobody", "")
	testutil.Must(t, err)
	testutil.Must(t, parent.DropPrivileges(c))

	if _, err := os.ReadDir(www); !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("os.ReadDir(%s) after the drop: %v, want EACCES", www, err)
	}
	fsys := o.FS(www)
	if err := fstest.TestFS(fsys, "index.html", "sub", "sub/a.txt"); err != nil {
		t.Error(err)
	}
	ents, err := fs.ReadDir(fsys, ".")
	testutil.Must(t, err)
	for _, e := range ents {
		info, err := e.Info()
		if err != nil || info.Name() != e.Name() || info.Mode().Type() != e.Type() {
			t.Errorf("%s: Info() = %v, %v", e.Name(), info, err)
		}
	}
	srv := httptest.NewServer(http.FileServer(http.FS(fsys)))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/sub/")
	testutil.Must(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `href="a.txt"`) {
		t.Errorf("GET /sub/ after the drop: %d %q", resp.StatusCode, b)
	}
}
