//go:build linux

package parent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/policy"
)

// FS returns a read-only file system of the tree at root whose every file
// and directory is opened through the opener, so that it keeps working after
// the parent has dropped its privileges or restricted itself with Landlock:
//
//	op, err := parent.Start(ctx, parent.Config{Rules: []string{"/srv/www/"}})
//	// ... drop privileges ...
//	http.Handle("/", http.FileServer(http.FS(op.FS("/srv/www"))))
//
// The result implements fs.FS, fs.ReadDirFS, fs.ReadFileFS, fs.StatFS and
// fs.SubFS, so it also serves template.ParseFS, fs.WalkDir, fs.Glob and
// testing/fstest. It is safe for concurrent use.
//
// Names are io/fs names (fs.ValidPath): slash-separated, relative to root,
// "." for root itself. The opener is asked for root+"/"+name ("/"+name when
// root is "/", root for "."); fs.ValidPath already rules out "..", so
// nothing is cleaned. An invalid name fails with an *fs.PathError whose Err
// is fs.ErrInvalid (so does a name with a NUL byte). root must be absolute and clean, as every path the
// opener is asked for; if it is not, FS still returns a file system, whose
// every call fails with an error that matches fs.ErrInvalid and says why.
//
// Every other error is an *fs.PathError with the op ("open", "stat",
// "readdir", "readfile") and the name as given, wrapping the opener's error:
// errors.Is(err, fs.ErrNotExist) works for a missing file, and a refusal by
// the opener matches ErrDenied and fs.ErrPermission. (Errors of an open
// File and of a directory entry's Info keep their own ops: "read",
// "readdir", "close", "lstat".) The opener's policy decides, not root: if
// no rule allows root itself, Open(".") and ReadDir(".") fail with
// ErrDenied, and only the names beneath root that some rule allows are
// served.
//
// Open returns, for a regular file, the *os.File the opener sent (reading,
// seeking, ReadAt and io.WriterTo work as on any file); Stat is fstat(2) on
// the descriptor. The parent never opens anything by path.
//
// Directories depend on the rule. By default the opener keeps a
// directory's descriptor (it would let the parent walk ".." with its own
// credentials; see README, "Directory descriptors"), and the FS lists the
// directory through the opener instead (Opener.ReadDir), a reply at a time:
// Open returns an fs.ReadDirFile that holds no descriptor, and the
// listing gives names and types only. An entry's Info then asks the opener
// for a regular file (an open and fstat); a directory's Info, and Stat of
// a directory, is its type alone, with no permission bits, size 0 and the
// zero time, as is Info of an entry the opener never opens (a symlink, a
// FIFO). Under a rule with dirs=yes, Open returns an fs.ReadDirFile that
// reads the descriptor the opener sent, and each entry's Info is taken
// then, with fstatat(2) on that descriptor for the single name, without
// following symlinks; when the parent may not do even that (a directory its
// dropped user cannot search), Info asks the opener for the entry instead,
// which works for regular files and directories only. As with os.DirFS, Open,
// Stat and ReadFile follow symlinks (the opener follows them within the
// rule's tree with openat2; its fallback for older kernels follows none),
// and directory entries describe the symlinks themselves.
//
// Only what the opener may open can be opened: a symlink that leads out of
// the rule's tree, a FIFO, socket or device appears in listings (with its
// own type) but Open, Stat and ReadFile fail for it with ErrDenied. Such a
// tree is not a well-formed fs.FS for testing/fstest, which expects every
// listed entry to open.
//
// Calls wait for the opener without a deadline (context.Background), and
// fail at once with its *ExitError if it has died. Every File must be
// closed; ReadDir, ReadFile and Stat close what they open.
func (o *Opener) FS(root string) fs.FS {
	if err := policy.CheckPath(root); err != nil {
		why := err.Error()
		var r *policy.Refusal
		if errors.As(err, &r) {
			why = r.Why
		}
		return &openerFS{o: o, err: fmt.Errorf("privsep: FS root %q: %s: %w", root, why, fs.ErrInvalid)}
	}
	return &openerFS{o: o, root: root}
}

// openerFS is what FS returns.
type openerFS struct {
	o    *Opener
	root string // absolute and clean
	err  error  // the root is unusable: every call fails with it
}

var (
	_ fs.ReadDirFS  = (*openerFS)(nil)
	_ fs.ReadFileFS = (*openerFS)(nil)
	_ fs.StatFS     = (*openerFS)(nil)
	_ fs.SubFS      = (*openerFS)(nil)
)

// join returns the absolute path of a valid name.
func (f *openerFS) join(name string) string {
	switch {
	case name == ".":
		return f.root
	case f.root == "/":
		return "/" + name
	}
	return f.root + "/" + name
}

// validName reports whether name is an io/fs name the opener can be asked
// for: fs.ValidPath, and no NUL byte (which os.DirFS refuses as well).
func validName(name string) bool {
	return fs.ValidPath(name) && strings.IndexByte(name, 0) < 0
}

// open checks name and asks the opener for it. Errors are *fs.PathError for
// op and name.
func (f *openerFS) open(op, name string, flag int) (*os.File, error) {
	if !validName(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if f.err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: f.err}
	}
	if name == "." {
		// The root of an fs.FS is a directory, as os.DirFS insists too.
		flag |= unix.O_DIRECTORY
	}
	file, err := f.o.Open(context.Background(), f.join(name), flag, 0)
	if err != nil {
		return nil, fsError(op, name, err)
	}
	return file, nil
}

// fsError re-labels err, usually an *fs.PathError for an absolute path or
// the file's own name, with op and the io/fs name.
func fsError(op, name string, err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		err = pe.Err
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// Open opens name for reading. See FS.
func (f *openerFS) Open(name string) (fs.File, error) {
	file, err := f.open("open", name, os.O_RDONLY)
	if isDirRefusal(err) {
		// A directory whose descriptor the rule keeps back: list it
		// through the opener instead.
		return &listDir{fsys: f, name: name}, nil
	}
	if err != nil {
		return nil, err
	}
	info, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, fsError("open", name, err)
	}
	if info.IsDir() {
		return &dirFile{f: file, fsys: f, name: name}, nil
	}
	// A regular file (the opener sends nothing else); its name is
	// root/name, so its Stat already says path.Base(name).
	return file, nil
}

// Stat returns the FileInfo of name, following symlinks.
func (f *openerFS) Stat(name string) (fs.FileInfo, error) {
	return f.fstat("stat", name, os.O_RDONLY)
}

// ReadDir reads the directory name and returns its entries sorted by name.
func (f *openerFS) ReadDir(name string) ([]fs.DirEntry, error) {
	var d fs.ReadDirFile
	file, err := f.open("readdir", name, os.O_RDONLY|unix.O_DIRECTORY)
	switch {
	case isDirRefusal(err):
		d = &listDir{fsys: f, name: name}
	case err != nil:
		return nil, err
	default:
		defer file.Close()
		d = &dirFile{f: file, fsys: f, name: name}
	}
	ents, err := d.ReadDir(-1)
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return ents, err
}

// ReadFile reads the whole file name.
func (f *openerFS) ReadFile(name string) ([]byte, error) {
	file, err := f.open("readfile", name, os.O_RDONLY)
	if isDirRefusal(err) {
		// As reading it would, with or without its descriptor.
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: errIsDir}
	}
	if err != nil {
		return nil, err
	}
	defer file.Close()
	size := 0
	if info, err := file.Stat(); err == nil && info.Mode().IsRegular() && int64(int(info.Size())) == info.Size() {
		size = int(info.Size())
	}
	// As os.ReadFile: one byte more than the size, so that the read that
	// finds the end needs no reallocation; files may grow meanwhile, or say
	// 0 (as some in /proc do).
	data := make([]byte, 0, max(size+1, 512))
	for {
		n, err := file.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			return data, nil
		}
		if err != nil {
			return nil, fsError("readfile", name, err)
		}
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
	}
}

// Sub returns the file system of the subtree dir, without opening it: as
// for fs.Sub, a dir that does not exist makes every later call fail.
func (f *openerFS) Sub(dir string) (fs.FS, error) {
	if !validName(dir) {
		return nil, &fs.PathError{Op: "sub", Path: dir, Err: fs.ErrInvalid}
	}
	if f.err != nil || dir == "." {
		return f, nil
	}
	return &openerFS{o: f.o, root: f.join(dir)}, nil
}

// named gives info the io/fs name's base name: "." for the root, where the
// *os.File knows root's own base name.
func named(info fs.FileInfo, name string) fs.FileInfo {
	if base := path.Base(name); info.Name() != base {
		return renamedInfo{info, base}
	}
	return info
}

type renamedInfo struct {
	fs.FileInfo
	name string
}

func (r renamedInfo) Name() string { return r.name }

// dirFile is an open directory: the descriptor the opener sent.
type dirFile struct {
	f    *os.File
	fsys *openerFS
	name string // the io/fs name
}

var _ fs.ReadDirFile = (*dirFile)(nil)

// Stat returns the directory's FileInfo, from fstat(2).
func (d *dirFile) Stat() (fs.FileInfo, error) {
	info, err := d.f.Stat()
	if err != nil {
		return nil, fsError("stat", d.name, err)
	}
	return named(info, d.name), nil
}

// Read fails, as reading a directory does.
func (d *dirFile) Read(b []byte) (int, error) {
	n, err := d.f.Read(b)
	if err != nil && err != io.EOF {
		err = fsError("read", d.name, err)
	}
	return n, err
}

// Close closes the descriptor.
func (d *dirFile) Close() error {
	if err := d.f.Close(); err != nil {
		return fsError("close", d.name, err)
	}
	return nil
}

// ReadDir reads the next entries, in directory order, as
// fs.ReadDirFile.ReadDir describes. Entries removed between the listing and
// the look at them are left out, as os.File.ReadDir does.
func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	for {
		ents, err := d.f.ReadDir(n)
		out := d.entries(ents)
		if err != nil {
			if err != io.EOF {
				err = fsError("readdir", d.name, err)
			}
			return out, err
		}
		if n <= 0 || len(out) > 0 {
			return out, nil
		}
		// Every entry of this batch vanished; an empty batch without an
		// error is not allowed, so read on.
	}
}

// entries turns os's entries, whose Info would lstat by path, into entries
// whose Info was taken from the directory's descriptor.
func (d *dirFile) entries(ents []os.DirEntry) []fs.DirEntry {
	if len(ents) == 0 {
		return nil
	}
	out := make([]fs.DirEntry, 0, len(ents))
	prefix := ""
	if d.name != "." {
		prefix = d.name + "/"
	}
	look := func(fd int) {
		for _, e := range ents {
			de := &dirEntry{name: e.Name(), typ: e.Type(), path: prefix + e.Name()}
			var st unix.Stat_t
			var err error = unix.EINTR
			for err == unix.EINTR {
				err = unix.Fstatat(fd, e.Name(), &st, unix.AT_SYMLINK_NOFOLLOW)
			}
			switch {
			case err == nil:
				info := newStatInfo(e.Name(), &st)
				de.info, de.typ = info, info.mode.Type()
			case err == unix.ENOENT:
				continue // gone since the listing
			case err == unix.EACCES || err == unix.EPERM:
				de.err = &fs.PathError{Op: "lstat", Path: de.path, Err: err}
				de.fsys = d.fsys // Info asks the opener
			default:
				de.err = &fs.PathError{Op: "lstat", Path: de.path, Err: err}
			}
			out = append(out, de)
		}
	}
	rc, err := d.f.SyscallConn()
	if err == nil {
		err = rc.Control(func(fd uintptr) { look(int(fd)) })
	}
	if err != nil { // closed meanwhile by another goroutine
		for _, e := range ents {
			p := prefix + e.Name()
			out = append(out, &dirEntry{name: e.Name(), typ: e.Type(), path: p, err: fsError("lstat", p, err)})
		}
	}
	return out
}

// dirEntry is an entry of a listing.
type dirEntry struct {
	name string
	typ  fs.FileMode
	path string      // the io/fs name of the entry
	info fs.FileInfo // from fstatat; nil if that failed
	err  error       // why it failed
	fsys *openerFS   // non-nil: the parent may not look, Info asks the opener
}

func (e *dirEntry) Name() string      { return e.name }
func (e *dirEntry) IsDir() bool       { return e.typ.IsDir() }
func (e *dirEntry) Type() fs.FileMode { return e.typ }
func (e *dirEntry) String() string    { return fs.FormatDirEntry(e) }

// Info returns the entry's own FileInfo (a symlink's, not its target's).
func (e *dirEntry) Info() (fs.FileInfo, error) {
	if e.info != nil {
		return e.info, nil
	}
	if e.fsys == nil || !(e.typ.IsRegular() || e.typ.IsDir()) {
		// The opener opens only regular files and directories, and
		// never a symlink with O_NOFOLLOW.
		return nil, e.err
	}
	return e.fsys.lstat(e.path)
}

// lstat asks the opener for the FileInfo of name without following a
// symlink.
func (f *openerFS) lstat(name string) (fs.FileInfo, error) {
	return f.fstat("lstat", name, os.O_RDONLY|unix.O_NOFOLLOW)
}

// fstat is Stat and lstat, for the op they report: the opener opens name
// with flag (a regular file or a directory) and the parent fstats it; a
// directory whose descriptor the rule keeps back (no dirs=yes) gets
// dirInfo.
func (f *openerFS) fstat(op, name string, flag int) (fs.FileInfo, error) {
	file, err := f.open(op, name, flag)
	if isDirRefusal(err) {
		return dirInfo(name), nil
	}
	if err != nil {
		return nil, err
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return nil, fsError(op, name, err)
	}
	return named(info, name), nil
}

// statInfo is an fs.FileInfo from fstatat(2), like os's: Sys returns a
// *syscall.Stat_t.
type statInfo struct {
	name string
	mode fs.FileMode
	st   syscall.Stat_t
}

func newStatInfo(name string, s *unix.Stat_t) *statInfo {
	i := &statInfo{name: name, st: syscall.Stat_t{
		Dev:     s.Dev,
		Ino:     s.Ino,
		Nlink:   s.Nlink,
		Mode:    s.Mode,
		Uid:     s.Uid,
		Gid:     s.Gid,
		Rdev:    s.Rdev,
		Size:    s.Size,
		Blksize: s.Blksize,
		Blocks:  s.Blocks,
		Atim:    syscall.Timespec{Sec: s.Atim.Sec, Nsec: s.Atim.Nsec},
		Mtim:    syscall.Timespec{Sec: s.Mtim.Sec, Nsec: s.Mtim.Nsec},
		Ctim:    syscall.Timespec{Sec: s.Ctim.Sec, Nsec: s.Ctim.Nsec},
	}}
	// As os converts st_mode.
	m := fs.FileMode(s.Mode & 0o777)
	switch s.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	}
	if s.Mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if s.Mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if s.Mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	i.mode = m
	return i
}

func (i *statInfo) Name() string       { return i.name }
func (i *statInfo) Size() int64        { return i.st.Size }
func (i *statInfo) Mode() fs.FileMode  { return i.mode }
func (i *statInfo) ModTime() time.Time { return time.Unix(i.st.Mtim.Unix()) }
func (i *statInfo) IsDir() bool        { return i.mode.IsDir() }
func (i *statInfo) Sys() any           { return &i.st }
