//go:build linux

package opener

import (
	"errors"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/broker"
	"github.com/privsep-go/privsep/policy"
	"github.com/privsep-go/privsep/protocol"
)

// worker serves requests one at a time with buffers allocated once (or
// taken from its session's pool), so the steady state allocates nothing
// beyond the descriptor it opens.
type worker struct {
	s       *Session
	*bufSet // nil until the first receive; in a pooled session, while idle
	// plainDev is the last st_dev of an anonymous device (major 0: tmpfs,
	// procfs, overlay...) that fstatfs showed is not procfs, so that a tree
	// on tmpfs costs one fstatfs per worker, not one per open.
	plainDev uint64

	io      *connIO     // receives into buf, oob and fds; sends replies
	holding atomic.Bool // this worker holds s.receiving (see "The receiving role")
	// seq counts the requests begun and ended: odd while one is served.
	// The session's watchdog reads it; seen is the watchdog's own copy
	// from its last look (only the watchdog touches seen).
	seq  atomic.Uint32
	seen uint32
	// done counts the opens of a batch as they end, so that a long batch
	// that keeps making progress is not taken for a stalled one.
	done     atomic.Uint32
	seenDone uint32
	busy     bool // counted in s.act as serving a request
	// brokered is the program's call this worker is deciding, for the
	// audit log; nil for a socket request.
	brokered *broker.Request
	yielded  time.Time // when the worker last yielded (see yieldAfter)
}

// bufSet is what a worker needs to serve one request: about 80 KiB, most
// of it the receive buffer.
type bufSet struct {
	buf    []byte // the request as received
	oob    []byte
	out    []byte // the reply being built
	fds    []int  // descriptors that arrived with the request (always closed)
	items  []protocol.Open
	status []protocol.Status
	opened []int
	cpath  *[policy.MaxPath + 1]byte // NUL-terminated relative path for openat2
	dirent []byte                    // getdents64 buffer for readdir, made on first use
}

func newBufSet() *bufSet {
	return &bufSet{
		buf:    make([]byte, protocol.MaxMessage),
		oob:    make([]byte, protocol.OOBSize),
		out:    make([]byte, 0, protocol.HeaderSize+4+8*protocol.MaxBatch),
		fds:    make([]int, 0, protocol.MaxFDs),
		items:  make([]protocol.Open, 0, protocol.MaxBatch),
		status: make([]protocol.Status, 0, protocol.MaxBatch),
		opened: make([]int, 0, protocol.MaxBatch),
		cpath:  new([policy.MaxPath + 1]byte),
	}
}

// BufferPool holds the buffers of a server's workers between requests, so
// that an idle session holds none: thousands of idle clients would
// otherwise hold 80 KiB each.
type BufferPool struct{ p sync.Pool }

// NewBufferPool makes an empty pool.
func NewBufferPool() *BufferPool {
	return &BufferPool{p: sync.Pool{New: func() any { return newBufSet() }}}
}

func newWorker(s *Session) *worker { return &worker{s: s, io: newIO(s.conn, nil, nil, nil)} }

// take gives the worker its buffers: its own, made on its first receive
// (most of an opener's workers only ever wait for a stall, and need none),
// or, in a pooled session, a set from the pool.
func (w *worker) take() {
	if w.s.pool != nil {
		w.bufSet = w.s.pool.p.Get().(*bufSet)
	} else {
		w.bufSet = newBufSet()
	}
	w.io.buf, w.io.oob, w.io.fds = w.buf, w.oob, w.fds
}

// release gives a pooled session's buffers back once a request is served.
func (w *worker) release() {
	if w.s.pool == nil || w.bufSet == nil {
		return
	}
	w.s.pool.p.Put(w.bufSet)
	w.bufSet = nil
	w.io.buf, w.io.oob, w.io.fds = nil, nil, nil
}

// passOn gives up the receiving role, if this worker still holds it, so
// that another worker receives the next request.
func (w *worker) passOn() {
	if w.holding.CompareAndSwap(true, false) {
		w.s.receiving.Unlock()
	}
}

// run serves until end of stream and returns the exit status. A violation
// that leaves the stream untrustworthy ends the session (in the opener
// process: exits it) from inside.
func (w *worker) run() int {
	defer w.release()
	defer w.idleEnd()
	for {
		w.idleEnd()
		if !w.holding.Load() {
			w.s.receiving.Lock()
			w.holding.Store(true)
		}
		if w.s.pool != nil {
			// Hold no buffers while waiting: only once a request is there.
			w.release()
			if err := w.io.wait(); err != nil {
				w.s.fatal(protocol.ExitInternal, "waiting for a request", err, 0)
				w.passOn()
				return protocol.ExitInternal
			}
		}
		if w.bufSet == nil {
			w.take()
		}
		m, err := w.io.recv()
		w.idleBegin()
		switch {
		case err == io.EOF:
			// End of stream is sticky: let the next worker see it too.
			w.passOn()
			return protocol.ExitOK
		case err != nil && m.Type != 0:
			// The header was sound, so the stream is still in step (one
			// message is one request): answer this id and go on. Lost
			// descriptors are our limit, not the parent's fault.
			reason := protocol.ReasonProtocol
			if errors.Is(err, protocol.ErrFDsDropped) {
				reason = protocol.ReasonSystem
			}
			w.s.log.Warn("refused a malformed request", "id", m.ID, "type", m.Type.String(), "error", err)
			w.reply(protocol.AppendError(w.out[:0], m.ID, protocol.ErrorReply{Errno: uint32(ErrnoFor(err)), Reason: reason}), nil)
			continue
		case err != nil:
			code := protocol.ExitProtocol
			var se *os.SyscallError
			if errors.As(err, &se) {
				code = protocol.ExitInternal
			}
			w.s.fatal(code, "receiving a request", err, ErrnoFor(err))
			w.passOn()
			return code
		}
		w.seq.Add(1) // odd: serving
		w.s.arm()
		w.handle(m)
		w.seq.Add(1) // if the watchdog saw a stall, it gave the role away
		if now := time.Now(); now.Sub(w.yielded) >= yieldAfter {
			w.yielded = now
			// A receiver that never yields looks to the runtime's monitor
			// like a goroutine running for 10 ms: it preempts it, takes
			// its scheduler slot back at the next system call and ticks
			// every 20 µs for a while after. Yielding now and then, where
			// no other goroutine wants the slot, costs far less.
			runtime.Gosched()
		}
	}
}

// yieldAfter is how long a worker serves between yields: well inside the
// runtime monitor's 10 ms, and by the clock rather than by a count of
// requests, because each yield wakes a second thread (the runtime offers
// the yielded slot to it) and costs two context switches on one CPU.
// Yielding every 16 requests, as the worker used to, was every 0.7 ms for
// single opens pinned; every 5 ms saves about 0.15 context switches per
// open there (PERFORMANCE.md), and never yielding costs more than either.
const yieldAfter = 5 * time.Millisecond

// idleBegin and idleEnd bracket a request for the session's Activity (a
// server's idle timeout).
func (w *worker) idleBegin() {
	if w.s.act != nil {
		w.busy = true
		w.s.act.Begin()
	}
}

func (w *worker) idleEnd() {
	if w.busy {
		w.busy = false
		w.s.act.End()
	}
}

// handle answers one well-framed message. Descriptors that came with it are
// closed: no request takes any.
func (w *worker) handle(m protocol.Msg) {
	if m.Type == protocol.TypeBroker && m.ID != 0 {
		// The one request that brings a descriptor: the program's
		// seccomp listener (privsep exec --broker).
		w.startBroker(m)
		return
	}
	if len(m.FDs) > 0 {
		protocol.CloseFDs(m.FDs)
		w.protoError(m.Header, "descriptors attached to a request", nil)
		return
	}
	if m.ID == 0 && m.Type != protocol.TypeHello {
		// Id 0 belongs to the handshake and to errors about the whole
		// connection; no request may use it.
		w.protoError(m.Header, "request with the reserved id 0", nil)
		return
	}
	switch m.Type {
	case protocol.TypeOpen:
		o, err := protocol.DecodeOpen(m.Payload)
		if err != nil {
			w.protoError(m.Header, "malformed open request", err)
			return
		}
		fd, st := w.open(o)
		w.replyOne(m.ID, fd, st)
	case protocol.TypeOpenBatch:
		items, err := protocol.DecodeOpenBatch(m.Payload, w.items)
		if err != nil {
			w.protoError(m.Header, "malformed open-batch request", err)
			return
		}
		w.status, w.opened = w.status[:0], w.opened[:0]
		for _, it := range items {
			fd, st := w.open(it)
			w.done.Add(1)
			if st.Reason == protocol.ReasonOK {
				w.opened = append(w.opened, fd)
			}
			w.status = append(w.status, st)
		}
		msg, err := protocol.AppendBatchReply(w.out[:0], m.ID, w.status)
		if err != nil { // cannot happen: the batch decoded with 1 to MaxBatch items
			protocol.CloseFDs(w.opened)
			w.s.fatal(protocol.ExitInternal, "encoding a batch reply", err, 0)
		}
		w.reply(msg, w.opened)
	case protocol.TypeListen:
		l, err := protocol.DecodeListen(m.Payload)
		if err != nil {
			w.protoError(m.Header, "malformed listen request", err)
			return
		}
		fd, st := w.listen(l)
		w.replyOne(m.ID, fd, st)
	case protocol.TypeReadDir:
		r, err := protocol.DecodeReadDir(m.Payload)
		if err != nil {
			w.protoError(m.Header, "malformed readdir request", err)
			return
		}
		w.readDir(m.ID, r)
	case protocol.TypeHello:
		w.protoError(m.Header, "second hello refused: the policy is fixed at start", nil)
	default:
		w.protoError(m.Header, "message type is not a request", nil)
	}
}

// replyOne answers a request for one descriptor: opened with fd, or the
// error st says.
func (w *worker) replyOne(id uint32, fd int, st protocol.Status) {
	if st.Reason != protocol.ReasonOK {
		w.reply(protocol.AppendError(w.out[:0], id, st), nil)
		return
	}
	w.opened = append(w.opened[:0], fd)
	w.reply(protocol.AppendOpened(w.out[:0], id), w.opened)
}

func (w *worker) protoError(h protocol.Header, why string, err error) {
	w.s.log.Warn("refused: "+why, "id", h.ID, "type", h.Type.String(), "error", err)
	w.reply(protocol.AppendError(w.out[:0], h.ID, protocol.ErrorReply{Errno: uint32(unix.EPROTO), Reason: protocol.ReasonProtocol}), nil)
}

// reply sends msg with fds and then closes fds: the opener keeps nothing it
// hands out, whether or not the send worked.
func (w *worker) reply(msg []byte, fds []int) {
	err := w.io.send(msg, fds)
	protocol.CloseFDs(fds)
	if err != nil && !errors.Is(err, unix.EPIPE) && !errors.Is(err, unix.ECONNRESET) {
		// A parent that went away shows up as end of stream on the next
		// receive; anything else is the opener's own failure.
		w.s.fatal(protocol.ExitInternal, "sending a reply", err, 0)
	}
}

// open decides and carries out one request. On success it returns the
// descriptor, which the caller owns.
func (w *worker) open(o protocol.Open) (int, protocol.Status) { return w.openFor(o, false) }

// openFor is open; listing says the descriptor is for the opener's own
// listing of a directory (readdir) and never leaves it, so that a directory
// is what it wants whatever the rule's dirs= says.
func (w *worker) openFor(o protocol.Open, listing bool) (int, protocol.Status) {
	s := w.s
	path := unsafeString(o.Path) // valid until the next receive into w.buf
	d, err := s.rs.pol.Check(path, int(o.Flags), o.Mode)
	if err != nil {
		r := refusalOf(err)
		reason := protocol.ReasonDenied
		if r.Kind == policy.BadRequest {
			reason = protocol.ReasonBadRequest
		}
		w.audit(o, reason, r.Errno, r.Why, d.Rule)
		return -1, protocol.Status{Errno: uint32(r.Errno), Reason: reason}
	}
	return w.openDecided(o, d, listing)
}

// openDecided carries out o, which the policy allowed with d: the open
// beneath the rule's pinned directory and every check on what it opened.
// An Open request and a brokered open (see broker.go) both come here, so
// that the two cannot drift apart.
func (w *worker) openDecided(o protocol.Open, d policy.Decision, listing bool) (int, protocol.Status) {
	s := w.s
	dirfd := s.rs.dirs[d.Dir]
	if dirfd < 0 {
		w.audit(o, protocol.ReasonSystem, s.rs.dirErr[d.Dir], "rule directory unavailable", d.Rule)
		return -1, protocol.Status{Errno: uint32(s.rs.dirErr[d.Dir]), Reason: protocol.ReasonSystem}
	}
	// O_TRUNC would act in the open itself, before the link count below
	// is known: truncate only once the file has passed that check.
	trunc := d.Flags&unix.O_TRUNC != 0 && !d.Hardlinks
	if trunc {
		d.Flags &^= unix.O_TRUNC
	}
	fd, created, errno, escape := w.openBeneath(dirfd, d)
	if errno == unix.ENXIO {
		// open(2) says ENXIO for a socket file or a device with no driver:
		// a file type we refuse anyway, so say that.
		w.audit(o, protocol.ReasonFileType, unix.EACCES, "not a regular file or directory", d.Rule)
		return -1, protocol.Status{Errno: uint32(unix.EACCES), Reason: protocol.ReasonFileType}
	}
	if errno != 0 {
		reason := protocol.ReasonSystem
		why := "open failed"
		if escape {
			reason, why = protocol.ReasonEscape, "resolution would leave the rule's directory"
		}
		w.audit(o, reason, errno, why, d.Rule)
		return -1, protocol.Status{Errno: uint32(errno), Reason: reason}
	}
	return w.checkOpened(o, d, fd, created, trunc, listing)
}

// checkOpened decides whether fd, just opened for o under d, may be handed
// out, and finishes it (O_TRUNC, the new file's owner, blocking mode). It
// closes fd when it refuses.
func (w *worker) checkOpened(o protocol.Open, d policy.Decision, fd int, created, trunc, listing bool) (int, protocol.Status) {
	s := w.s
	// Never hand out, nor block on, anything but a regular file or a
	// directory: the descriptor was opened O_NONBLOCK so a FIFO did not
	// hang us, and a device or socket is refused here.
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		errno := errnoOf(err)
		w.audit(o, protocol.ReasonSystem, errno, "fstat failed", d.Rule)
		return -1, protocol.Status{Errno: uint32(errno), Reason: protocol.ReasonSystem}
	}
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFREG && t != unix.S_IFDIR {
		unix.Close(fd)
		w.audit(o, protocol.ReasonFileType, unix.EACCES, "not a regular file or directory", d.Rule)
		return -1, protocol.Status{Errno: uint32(unix.EACCES), Reason: protocol.ReasonFileType}
	}
	if w.landsOnProc(fd, &st, d.Dir) {
		unix.Close(fd)
		w.audit(o, protocol.ReasonEscape, unix.EACCES, "resolution landed on procfs, outside a rule whose directory is there (a process's own /proc)", d.Rule)
		return -1, protocol.Status{Errno: uint32(unix.EACCES), Reason: protocol.ReasonEscape}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR && !d.Dirs && !listing {
		// A directory descriptor reaches past the rule: openat(fd, "..")
		// and fchdir work with the holder's own credentials. Only a rule
		// that says dirs=yes hands one out; O_PATH never gets this far
		// (the policy refuses it), so it is no way around.
		unix.Close(fd)
		w.audit(o, protocol.ReasonDirectory, unix.EACCES, "a directory, and the rule does not hand out directory descriptors (dirs=yes)", d.Rule)
		return -1, protocol.Status{Errno: uint32(unix.EACCES), Reason: protocol.ReasonDirectory}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink > 1 && !d.Hardlinks {
		// Whoever can write in the rule's tree can link a file there that
		// it could not open itself (fs.protected_hardlinks=0 lets anyone
		// link any file), and this descriptor would carry our access to
		// it. Only the rule can say that its tree's links are trusted.
		unix.Close(fd)
		w.audit(o, protocol.ReasonLinks, unix.EACCES, "multiply-linked file (st_nlink "+strconv.FormatUint(uint64(st.Nlink), 10)+"); the rule has no hardlinks=yes", d.Rule)
		return -1, protocol.Status{Errno: uint32(unix.EACCES), Reason: protocol.ReasonLinks}
	}
	if trunc && st.Mode&unix.S_IFMT == unix.S_IFREG {
		if err := unix.Ftruncate(fd, 0); err != nil {
			unix.Close(fd)
			errno := errnoOf(err)
			w.audit(o, protocol.ReasonSystem, errno, "truncating (O_TRUNC) failed", d.Rule)
			return -1, protocol.Status{Errno: uint32(errno), Reason: protocol.ReasonSystem}
		}
	}
	if created && (d.UID != policy.NoOwner || d.GID != policy.NoOwner) {
		// The rule names the owner of new files. Give it to the
		// descriptor before anyone else has it: no path, so no race.
		if err := unix.Fchown(fd, kernelID(d.UID), kernelID(d.GID)); err != nil {
			unix.Close(fd)
			errno := errnoOf(err)
			w.audit(o, protocol.ReasonSystem, errno, "fchown of the new file failed", d.Rule)
			return -1, protocol.Status{Errno: uint32(errno), Reason: protocol.ReasonSystem}
		}
	}
	if d.Flags&unix.O_NONBLOCK == 0 {
		// F_SETFL changes only the status flags (O_APPEND, O_NONBLOCK...).
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, d.Flags&unix.O_APPEND); err != nil {
			unix.Close(fd)
			errno := errnoOf(err)
			w.audit(o, protocol.ReasonSystem, errno, "restoring blocking mode failed", d.Rule)
			return -1, protocol.Status{Errno: uint32(errno), Reason: protocol.ReasonSystem}
		}
	}
	if s.log.IsDebug() {
		s.log.Debug("granted", "path", printable(o.Path), "flags", policy.FlagString(int(o.Flags)), "rule", s.rs.rules[d.Rule])
	}
	return fd, protocol.Status{}
}
