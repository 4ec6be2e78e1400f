//go:build linux

package parent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"syscall"
	"time"

	"github.com/privsep-go/privsep/policy"
	"github.com/privsep-go/privsep/protocol"
)

// readDirCall marks a call as a readdir in call.batch, so that the reader
// refuses an opened or batch reply to it (see dispatchLocked).
const readDirCall = -1

// ReadDir asks the opener to list the directory path, which must be
// absolute and clean, and returns its entries in directory order, without
// "." and "..". The opener checks the policy as for an open of path with
// O_RDONLY|O_DIRECTORY, but the directory's descriptor never leaves it, so
// a rule need not say dirs=yes: listing a directory the policy lets the
// parent read gives nothing a descriptor would (see README, "Rules").
//
// A large directory comes in several replies, each opening the directory
// afresh and going on where the last stopped; the opener holds nothing in
// between. If the directory changes meanwhile an entry may be missed or
// listed twice, as with readdir(3); if it is removed, ReadDir fails with
// ENOENT. Errors are *fs.PathError with op "readdir", like Open's.
func (o *Opener) ReadDir(ctx context.Context, path string) ([]DirEntry, error) {
	var all []DirEntry
	var cookie uint64
	for {
		var more bool
		var err error
		all, cookie, more, err = o.readDirPage(ctx, path, cookie, all)
		if err != nil || !more {
			return all, err
		}
	}
}

// readDirPage asks for one reply's worth of entries from cookie on and
// appends them to dst. It returns the cookie to go on from and whether
// there is more.
func (o *Opener) readDirPage(ctx context.Context, path string, cookie uint64, dst []DirEntry) ([]DirEntry, uint64, bool, error) {
	if err := policy.CheckPath(path); err != nil {
		return dst, 0, false, pathRefusal("readdir", path, err)
	}
	c := o.getCall()
	c.batch = readDirCall
	c.list = c.list[:0]
	var err error
	c.buf, err = protocol.AppendReadDir(c.buf[:0], 0, cookie, path)
	if err != nil {
		o.putCall(c)
		return dst, 0, false, &fs.PathError{Op: "readdir", Path: path, Err: err}
	}
	if err := o.roundTrip(ctx, c); err != nil {
		// The call may still be in pending (abandoned); the reader owns it.
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return dst, 0, false, &fs.PathError{Op: "readdir", Path: path, Err: err}
		}
		return dst, 0, false, err
	}
	defer func() {
		if cap(c.list) > 16<<10 {
			c.list = nil // do not keep a whole reply in every pooled call
		}
		o.putCall(c)
	}()
	switch {
	case c.err != nil:
		return dst, 0, false, callError("readdir", path, c.err)
	case c.reply.Reason != protocol.ReasonOK:
		err := replyError(path, c.reply).(*fs.PathError)
		err.Op = "readdir"
		return dst, 0, false, err
	}
	l, err := protocol.DecodeDirList(c.list)
	if err != nil { // the reader checked it already
		return dst, 0, false, &fs.PathError{Op: "readdir", Path: path, Err: err}
	}
	for e := range l.All() {
		if string(e.Name) == "." || string(e.Name) == ".." {
			continue
		}
		dst = append(dst, DirEntry{Name: string(e.Name), Type: dirType(e.Type)})
	}
	return dst, l.Cookie, l.More, nil
}

// dirListLocked checks a dir-list reply for c and keeps its payload, which
// lives in the reader's buffer only until the next receive.
func (o *mux) dirListLocked(c *call, m protocol.Msg) error {
	if c.batch != readDirCall || m.NFD != 0 || len(m.FDs) != 0 {
		return fmt.Errorf("protocol: dir-list reply %d to a request that is not a readdir, or with %d descriptors", m.ID, m.NFD)
	}
	if _, err := protocol.DecodeDirList(m.Payload); err != nil {
		return err
	}
	if !c.abandoned {
		c.list = append(c.list[:0], m.Payload...)
	}
	return nil
}

// dirType converts a DT_ value to fs.FileMode type bits.
func dirType(t uint8) fs.FileMode {
	switch t {
	case protocol.DirReg:
		return 0
	case protocol.DirDir:
		return fs.ModeDir
	case protocol.DirLink:
		return fs.ModeSymlink
	case protocol.DirFIFO:
		return fs.ModeNamedPipe
	case protocol.DirSocket:
		return fs.ModeSocket
	case protocol.DirChar:
		return fs.ModeDevice | fs.ModeCharDevice
	case protocol.DirBlock:
		return fs.ModeDevice
	}
	return fs.ModeIrregular
}

// isDirRefusal reports whether err is the opener's refusal of a directory
// for want of dirs=yes.
func isDirRefusal(err error) bool {
	var r *RefusedError
	return errors.As(err, &r) && r.Reason == protocol.ReasonDirectory
}

// errIsDir is what Read of a directory listed without its descriptor
// returns, as read(2) of a directory would.
var errIsDir error = syscall.EISDIR

// listDir is an open directory of an FS whose descriptor the rule keeps
// back (no dirs=yes): it lists through the opener, one reply at a time, and
// holds no descriptor.
type listDir struct {
	fsys   *openerFS
	name   string // the io/fs name
	cookie uint64 // where the next reply goes on
	ents   []DirEntry
	done   bool // the opener sent the last reply
	closed bool
}

var _ fs.ReadDirFile = (*listDir)(nil)

// Stat returns dirInfo: without the descriptor there is nothing to fstat.
func (d *listDir) Stat() (fs.FileInfo, error) {
	if d.closed {
		return nil, &fs.PathError{Op: "stat", Path: d.name, Err: fs.ErrClosed}
	}
	return dirInfo(d.name), nil
}

// Read fails, as reading a directory does.
func (d *listDir) Read([]byte) (int, error) {
	if d.closed {
		return 0, &fs.PathError{Op: "read", Path: d.name, Err: fs.ErrClosed}
	}
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: errIsDir}
}

// Close ends the listing; there is nothing to release.
func (d *listDir) Close() error {
	if d.closed {
		return &fs.PathError{Op: "close", Path: d.name, Err: fs.ErrClosed}
	}
	d.closed = true
	return nil
}

// ReadDir reads the next entries, in directory order, as
// fs.ReadDirFile.ReadDir describes, asking the opener for the next reply
// only when those at hand are used up.
func (d *listDir) ReadDir(n int) ([]fs.DirEntry, error) {
	if d.closed {
		return nil, &fs.PathError{Op: "readdir", Path: d.name, Err: fs.ErrClosed}
	}
	for !d.done && (n <= 0 || len(d.ents) == 0) {
		var more bool
		var err error
		d.ents, d.cookie, more, err = d.fsys.o.readDirPage(context.Background(), d.fsys.join(d.name), d.cookie, d.ents)
		if err != nil {
			return d.take(len(d.ents)), fsError("readdir", d.name, err)
		}
		d.done = !more
	}
	if n <= 0 {
		return d.take(len(d.ents)), nil
	}
	if len(d.ents) == 0 {
		return nil, io.EOF
	}
	return d.take(min(n, len(d.ents))), nil
}

// take returns the first n entries at hand as fs.DirEntry values.
func (d *listDir) take(n int) []fs.DirEntry {
	if n == 0 {
		return nil
	}
	out := make([]fs.DirEntry, n)
	prefix := ""
	if d.name != "." {
		prefix = d.name + "/"
	}
	for i, e := range d.ents[:n] {
		out[i] = &listEntry{name: e.Name, typ: e.Type, path: prefix + e.Name, fsys: d.fsys}
	}
	d.ents = d.ents[:copy(d.ents, d.ents[n:])]
	return out
}

// listEntry is an entry of a listing made by the opener: a name and a type.
type listEntry struct {
	name string
	typ  fs.FileMode
	path string // the io/fs name
	fsys *openerFS
}

func (e *listEntry) Name() string      { return e.name }
func (e *listEntry) IsDir() bool       { return e.typ.IsDir() }
func (e *listEntry) Type() fs.FileMode { return e.typ }
func (e *listEntry) String() string    { return fs.FormatDirEntry(e) }

// Info asks the opener for a regular file's or directory's FileInfo (see
// openerFS.lstat); for any other type, which the opener never opens, it
// returns typeInfo: the type, and no permissions, size or time.
func (e *listEntry) Info() (fs.FileInfo, error) {
	if e.typ.IsRegular() || e.typ.IsDir() {
		return e.fsys.lstat(e.path)
	}
	return typeInfo{name: e.name, mode: e.typ}, nil
}

// dirInfo is the FileInfo of a directory known only to be one: the opener
// refused its descriptor.
func dirInfo(name string) fs.FileInfo {
	return typeInfo{name: path.Base(name), mode: fs.ModeDir}
}

// typeInfo is a FileInfo with a name and a type only: no permission bits,
// size 0, the zero time, and a nil Sys.
type typeInfo struct {
	name string
	mode fs.FileMode
}

func (i typeInfo) Name() string       { return i.name }
func (i typeInfo) Size() int64        { return 0 }
func (i typeInfo) Mode() fs.FileMode  { return i.mode }
func (i typeInfo) ModTime() time.Time { return time.Time{} }
func (i typeInfo) IsDir() bool        { return i.mode.IsDir() }
func (i typeInfo) Sys() any           { return nil }
