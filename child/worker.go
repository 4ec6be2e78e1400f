//go:build linux

package child

import (
	"errors"
	"io"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/policy"
	"github.com/privsep-go/privsep/protocol"
)

// worker serves requests one at a time with buffers allocated once, so the
// steady state allocates nothing beyond the descriptor it opens.
type worker struct {
	s      *session
	buf    []byte // the request as received
	oob    []byte
	out    []byte // the reply being built
	fds    []int  // descriptors that arrived with the request (always closed)
	items  []protocol.Open
	status []protocol.Status
	opened []int
	cpath  [policy.MaxPath + 1]byte // NUL-terminated relative path for openat2

	io      *connIO     // receives into buf, oob and fds; sends replies
	holding atomic.Bool // this worker holds s.receiving
	stall   *time.Timer // passes the receiving role on when a request stalls
}

func newWorker(s *session) *worker {
	w := &worker{
		s:      s,
		buf:    make([]byte, protocol.MaxMessage),
		oob:    make([]byte, protocol.OOBSize),
		out:    make([]byte, 0, protocol.HeaderSize+4+8*protocol.MaxBatch),
		fds:    make([]int, 0, protocol.MaxFDs),
		items:  make([]protocol.Open, 0, protocol.MaxBatch),
		status: make([]protocol.Status, 0, protocol.MaxBatch),
		opened: make([]int, 0, protocol.MaxBatch),
	}
	w.io = newIO(s.conn, w.buf, w.oob, w.fds)
	w.stall = time.AfterFunc(time.Hour, w.passOn)
	w.stall.Stop()
	return w
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
	for {
		if !w.holding.Load() {
			w.s.receiving.Lock()
			w.holding.Store(true)
		}
		m, err := w.io.recv()
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
			w.reply(protocol.AppendError(w.out[:0], m.ID, protocol.ErrorReply{Errno: uint32(errnoFor(err)), Reason: reason}), nil)
			continue
		case err != nil:
			code := protocol.ExitProtocol
			var se *os.SyscallError
			if errors.As(err, &se) {
				code = protocol.ExitInternal
			}
			w.s.fatal(code, "receiving a request", err, errnoFor(err))
			w.passOn()
			return code
		}
		w.stall.Reset(StallAfter)
		w.handle(m)
		w.stall.Stop() // if it fired, passOn already gave the role away
	}
}

// handle answers one well-framed message. Descriptors that came with it are
// closed: no request takes any.
func (w *worker) handle(m protocol.Msg) {
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
func (w *worker) open(o protocol.Open) (int, protocol.Status) {
	s := w.s
	path := unsafeString(o.Path) // valid until the next receive into w.buf
	d, err := s.rs.pol.Check(path, int(o.Flags), o.Mode)
	if err != nil {
		r := err.(*policy.Refusal)
		reason := protocol.ReasonDenied
		if r.Kind == policy.BadRequest {
			reason = protocol.ReasonBadRequest
		}
		w.audit(o, reason, r.Errno, r.Why, d.Rule)
		return -1, protocol.Status{Errno: uint32(r.Errno), Reason: reason}
	}
	dirfd := s.rs.dirs[d.Dir]
	if dirfd < 0 {
		w.audit(o, protocol.ReasonSystem, s.rs.dirErr[d.Dir], "rule directory unavailable", d.Rule)
		return -1, protocol.Status{Errno: uint32(s.rs.dirErr[d.Dir]), Reason: protocol.ReasonSystem}
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

// audit logs a refusal. Policy decisions are warnings; an open that the
// policy allowed but the kernel failed (a missing file) is debug.
func (w *worker) audit(o protocol.Open, reason protocol.Reason, errno syscall.Errno, why string, rule int) {
	log := w.s.log
	if reason == protocol.ReasonSystem && !log.IsDebug() {
		return
	}
	args := []any{"path", printable(o.Path), "flags", policy.FlagString(int(o.Flags)),
		"reason", reason.String(), "errno", errno.Error(), "why", why}
	if rule >= 0 {
		args = append(args, "rule", w.s.rs.rules[rule])
	}
	if reason == protocol.ReasonSystem {
		log.Debug("open failed", args...)
		return
	}
	log.Warn("denied", args...)
}

// printable renders a path for the log: as is when it is valid UTF-8, else
// Go-quoted so that no byte is lost.
func printable(p []byte) string {
	if utf8.Valid(p) {
		return string(p)
	}
	return strconv.Quote(string(p))
}
