//go:build linux

package opener

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/protocol"
)

// direntBuf is the size of the buffer getdents64 reads into: about half a
// reply, since a dirent64 record is larger than the entry it becomes.
const direntBuf = 32 << 10

// readDir answers a readdir request: it opens the directory exactly as an
// open with O_RDONLY|O_DIRECTORY would (the same policy check and
// containment, but the descriptor never leaves the opener, so dirs= does
// not matter), seeks to the request's cookie, lists as many entries as fit
// in one reply and closes the directory again. Nothing is kept between
// requests: the reply's cookie is where the next one goes on.
func (w *worker) readDir(id uint32, r protocol.ReadDir) {
	o := protocol.Open{Flags: unix.O_RDONLY | unix.O_DIRECTORY, Path: r.Path}
	fd, st := w.openFor(o, true)
	if st.Reason != protocol.ReasonOK {
		w.reply(protocol.AppendError(w.out[:0], id, st), nil)
		return
	}
	msg, errno := w.list(fd, id, r.Cookie)
	unix.Close(fd)
	if errno != 0 {
		w.audit(o, protocol.ReasonSystem, errno, "listing the directory failed", -1)
		w.reply(protocol.AppendError(w.out[:0], id, protocol.Status{Errno: uint32(errno), Reason: protocol.ReasonSystem}), nil)
		return
	}
	w.out = msg[:0] // keep the grown buffer for the next listing
	w.reply(msg, nil)
}

// list reads the directory fd from cookie into a dir-list reply.
func (w *worker) list(fd int, id uint32, cookie uint64) ([]byte, syscall.Errno) {
	if cookie != 0 {
		if _, err := unix.Seek(fd, int64(cookie), io.SeekStart); err != nil {
			return nil, errnoOf(err)
		}
	}
	if w.dirent == nil {
		w.dirent = make([]byte, direntBuf)
	}
	var b protocol.DirListBuilder
	b.Reset(w.out[:0], id)
	last := int64(0) // the offset just past the last entry in the reply
	for {
		n, err := unix.Getdents(fd, w.dirent)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, errnoOf(err)
		}
		if n == 0 {
			msg, err := b.Finish(0, false)
			if err != nil { // cannot happen: a final reply with cookie 0
				return nil, unix.EIO
			}
			return msg, 0
		}
		for p := w.dirent[:n]; len(p) > 0; {
			reclen := int(binary.LittleEndian.Uint16(p[16:]))
			if reclen < 20 || reclen > len(p) {
				return nil, unix.EIO // the kernel does not write this
			}
			off := int64(binary.LittleEndian.Uint64(p[8:]))
			typ := p[18]
			name := p[19:reclen]
			for i, c := range name {
				if c == 0 {
					name = name[:i]
					break
				}
			}
			p = p[reclen:]
			if typ == protocol.DirUnknown {
				var gone bool
				if typ, gone = entryType(fd, name); gone {
					last = off // gone since the listing: skip it, but past it
					continue
				}
			}
			if err := b.Add(typ, name); err != nil {
				if !errors.Is(err, protocol.ErrDirListFull) {
					return nil, unix.EIO // a name the kernel should not have
				}
				if last <= 0 || uint64(last) > math.MaxInt64 {
					// No offset to go on from: the file system does not
					// keep positions this listing could resume at.
					return nil, unix.EOVERFLOW
				}
				msg, err := b.Finish(uint64(last), true)
				if err != nil { // Len() == 0: an entry larger than a reply, impossible
					return nil, unix.EIO
				}
				return msg, 0
			}
			last = off
		}
	}
}

// entryType finds the type of an entry the file system did not type, with
// fstatat on the one name beneath the directory, not following a symlink;
// "." and ".." are directories and are never looked up, since ".." is
// outside. gone reports an entry removed since the listing.
func entryType(dirfd int, name []byte) (typ uint8, gone bool) {
	if string(name) == "." || string(name) == ".." {
		return protocol.DirDir, false
	}
	var st unix.Stat_t
	var err error = unix.EINTR
	for err == unix.EINTR {
		err = unix.Fstatat(dirfd, string(name), &st, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err == unix.ENOENT {
		return 0, true
	}
	if err != nil {
		return protocol.DirUnknown, false
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return protocol.DirFIFO, false
	case unix.S_IFCHR:
		return protocol.DirChar, false
	case unix.S_IFDIR:
		return protocol.DirDir, false
	case unix.S_IFBLK:
		return protocol.DirBlock, false
	case unix.S_IFREG:
		return protocol.DirReg, false
	case unix.S_IFLNK:
		return protocol.DirLink, false
	case unix.S_IFSOCK:
		return protocol.DirSocket, false
	}
	return protocol.DirUnknown, false
}
