package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"math"
)

// Listing a directory without its descriptor. A directory descriptor lets
// its holder walk ".." with its own credentials, so the opener hands one out
// only under a rule with dirs=yes; the readdir request lets a parent list a
// directory the policy allows it to read without ever holding it.
//
// The opener keeps nothing between requests: each readdir opens the
// directory (checked as an open with O_RDONLY|O_DIRECTORY), seeks to the
// request's cookie, reads entries until the reply is full or the directory
// ends, and closes it. The reply carries the cookie to go on from: the
// directory offset (getdents64's d_off) just past its last entry, which the
// file system keeps valid across opens, as seekdir(3) and NFS rely on. A
// directory changed between two requests may show an entry twice or miss
// one, as readdir(3) may.

// MaxName is the longest name a dir-list entry may carry: NAME_MAX.
const MaxName = 255

// Directory entry types of a dir-list reply: Linux's DT_ values, as
// getdents64(2) reports them.
const (
	DirUnknown uint8 = 0  // DT_UNKNOWN: the file system did not say
	DirFIFO    uint8 = 1  // DT_FIFO
	DirChar    uint8 = 2  // DT_CHR
	DirDir     uint8 = 4  // DT_DIR
	DirBlock   uint8 = 6  // DT_BLK
	DirReg     uint8 = 8  // DT_REG
	DirLink    uint8 = 10 // DT_LNK
	DirSocket  uint8 = 12 // DT_SOCK
)

func knownDirType(t uint8) bool {
	switch t {
	case DirUnknown, DirFIFO, DirChar, DirDir, DirBlock, DirReg, DirLink, DirSocket:
		return true
	}
	return false
}

// ReadDir asks the opener to list a directory.
//
//	payload: u64 cookie (0: from the start; else the cookie of the previous
//	         dir-list reply for this path, at most 2⁶³−1), path (the rest: 1
//	         to MaxPath bytes, no NUL terminator)
//
// The reply is dir-list or error. Path aliases the decoded buffer.
type ReadDir struct {
	Cookie uint64
	Path   []byte
}

const (
	readDirFixed = 8
	dirListFixed = 12
	entryFixed   = 2

	// DirListMore is the dir-list flag saying the listing goes on: ask
	// again with the reply's cookie.
	DirListMore uint16 = 1 << 0

	dirListFlagsKnown = DirListMore
)

// AppendReadDir appends a whole readdir request with the given id to b.
func AppendReadDir(b []byte, id uint32, cookie uint64, path string) ([]byte, error) {
	if err := checkPathLen(len(path)); err != nil {
		return b, fmt.Errorf("protocol: readdir: %w", err)
	}
	if cookie > math.MaxInt64 {
		return b, fmt.Errorf("protocol: readdir: cookie %#x is not a directory offset", cookie)
	}
	start := len(b)
	b = appendHeader(b)
	b = binary.LittleEndian.AppendUint64(b, cookie)
	b = append(b, path...)
	return finish(b, start, TypeReadDir, id, 0)
}

// DecodeReadDir decodes a readdir payload. Path aliases p.
func DecodeReadDir(p []byte) (ReadDir, error) {
	if len(p) < readDirFixed {
		return ReadDir{}, malformed("readdir payload of %d bytes is shorter than %d", len(p), readDirFixed)
	}
	r := ReadDir{Cookie: binary.LittleEndian.Uint64(p), Path: p[readDirFixed:]}
	if r.Cookie > math.MaxInt64 {
		return ReadDir{}, malformed("readdir cookie %#x is not a directory offset", r.Cookie)
	}
	if err := checkPathLen(len(r.Path)); err != nil {
		return ReadDir{}, malformed("readdir: %v", err)
	}
	return r, nil
}

// DirEntry is one entry of a dir-list reply: a name as the directory holds
// it (any bytes but '/' and NUL, "." and ".." included) and its DT_ type.
type DirEntry struct {
	Type uint8
	Name []byte
}

// DirList is a decoded dir-list reply.
//
//	payload: u64 cookie, u16 entry count, u16 flags (bit 0: more), then per
//	         entry: u8 type (a DT_ value), u8 name length (1 to 255), the
//	         name's bytes
//
// With the more flag, the listing goes on from Cookie (1 to 2⁶³−1) and the
// reply carries at least one entry; without it the listing is complete
// and Cookie is 0.
type DirList struct {
	Cookie uint64
	More   bool
	Count  int
	raw    []byte // the entries, checked
}

// All yields the entries in order. Names alias the decoded payload.
func (l DirList) All() iter.Seq[DirEntry] {
	return func(yield func(DirEntry) bool) {
		for p := l.raw; len(p) > 0; {
			n := int(p[1])
			if !yield(DirEntry{Type: p[0], Name: p[entryFixed : entryFixed+n : entryFixed+n]}) {
				return
			}
			p = p[entryFixed+n:]
		}
	}
}

// DecodeDirList decodes and checks a dir-list payload; it allocates nothing.
func DecodeDirList(p []byte) (DirList, error) {
	if len(p) < dirListFixed {
		return DirList{}, malformed("dir-list payload of %d bytes is shorter than %d", len(p), dirListFixed)
	}
	l := DirList{Cookie: binary.LittleEndian.Uint64(p), Count: int(binary.LittleEndian.Uint16(p[8:]))}
	flags := binary.LittleEndian.Uint16(p[10:])
	if flags&^dirListFlagsKnown != 0 {
		return DirList{}, malformed("unknown dir-list flags %#04x", flags&^dirListFlagsKnown)
	}
	l.More = flags&DirListMore != 0
	switch {
	case l.More && (l.Cookie == 0 || l.Cookie > math.MaxInt64):
		// Cookie 0 would start the listing over.
		return DirList{}, malformed("dir-list cookie %#x is not a directory offset to go on from", l.Cookie)
	case l.More && l.Count == 0:
		// It would have the parent ask again and again for nothing.
		return DirList{}, malformed("dir-list says more but carries no entry")
	case !l.More && l.Cookie != 0:
		return DirList{}, malformed("final dir-list carries cookie %#x, want 0", l.Cookie)
	}
	rest := p[dirListFixed:]
	l.raw = rest
	for i := 0; i < l.Count; i++ {
		if len(rest) < entryFixed {
			return DirList{}, malformed("dir-list entry %d: %d bytes left, want at least %d", i, len(rest), entryFixed)
		}
		t, n := rest[0], int(rest[1])
		if !knownDirType(t) {
			return DirList{}, malformed("dir-list entry %d: unknown type %d", i, t)
		}
		if n == 0 || n > len(rest)-entryFixed {
			return DirList{}, malformed("dir-list entry %d: name length %d, %d bytes left", i, n, len(rest)-entryFixed)
		}
		if err := checkName(rest[entryFixed : entryFixed+n]); err != nil {
			return DirList{}, malformed("dir-list entry %d: %v", i, err)
		}
		rest = rest[entryFixed+n:]
	}
	if len(rest) != 0 {
		return DirList{}, malformed("dir-list has %d trailing bytes", len(rest))
	}
	return l, nil
}

func checkName(name []byte) error {
	if len(name) == 0 || len(name) > MaxName {
		return fmt.Errorf("name of %d bytes: want 1 to %d", len(name), MaxName)
	}
	for _, c := range name {
		if c == '/' || c == 0 {
			return fmt.Errorf("name %q holds a slash or a NUL byte", name)
		}
	}
	return nil
}

// ErrDirListFull is returned by DirListBuilder.Add when the entry would
// take the reply past MaxMessage.
var ErrDirListFull = errors.New("protocol: dir-list reply is full")

// DirListBuilder builds a dir-list reply one entry at a time, in a buffer
// the caller reuses.
type DirListBuilder struct {
	b     []byte
	start int
	id    uint32
	n     int
}

// Reset starts a dir-list reply with the given id at the end of b.
func (d *DirListBuilder) Reset(b []byte, id uint32) {
	d.start, d.id, d.n = len(b), id, 0
	d.b = appendHeader(b)
	d.b = append(d.b, make([]byte, dirListFixed)...)
}

// Len returns the number of entries added.
func (d *DirListBuilder) Len() int { return d.n }

// Add appends an entry. It fails with ErrDirListFull, leaving the reply as
// it was, when the entry does not fit; with another error for a name or
// type the wire cannot carry.
func (d *DirListBuilder) Add(typ uint8, name []byte) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("protocol: dir-list entry: %w", err)
	}
	if !knownDirType(typ) {
		return fmt.Errorf("protocol: dir-list entry %q: unknown type %d", name, typ)
	}
	if len(d.b)-d.start+entryFixed+len(name) > MaxMessage || d.n == math.MaxUint16 {
		return ErrDirListFull
	}
	d.b = append(d.b, typ, byte(len(name)))
	d.b = append(d.b, name...)
	d.n++
	return nil
}

// Finish completes the reply and returns the whole message: with more, the
// listing goes on from cookie; without, cookie must be 0.
func (d *DirListBuilder) Finish(cookie uint64, more bool) ([]byte, error) {
	switch {
	case more && d.n == 0:
		return d.b[:d.start], fmt.Errorf("protocol: dir-list says more but carries no entry")
	case more && (cookie == 0 || cookie > math.MaxInt64):
		return d.b[:d.start], fmt.Errorf("protocol: dir-list cookie %#x is not a directory offset to go on from", cookie)
	case !more && cookie != 0:
		return d.b[:d.start], fmt.Errorf("protocol: final dir-list with cookie %#x, want 0", cookie)
	}
	f := d.b[d.start+HeaderSize:]
	binary.LittleEndian.PutUint64(f, cookie)
	binary.LittleEndian.PutUint16(f[8:], uint16(d.n))
	var flags uint16
	if more {
		flags = DirListMore
	}
	binary.LittleEndian.PutUint16(f[10:], flags)
	return finish(d.b, d.start, TypeDirList, d.id, 0)
}

// AppendDirList appends a whole dir-list reply with the given entries to b.
func AppendDirList(b []byte, id uint32, cookie uint64, more bool, ents []DirEntry) ([]byte, error) {
	var d DirListBuilder
	d.Reset(b, id)
	for _, e := range ents {
		if err := d.Add(e.Type, e.Name); err != nil {
			return b, err
		}
	}
	return d.Finish(cookie, more)
}
