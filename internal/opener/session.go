//go:build linux

package opener

import (
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/policy"
	"github.com/privsep-go/privsep/protocol"
)

// DefaultWorkers is how many requests the opener serves at once.
const DefaultWorkers = 8

// StallAfter is how long a request may take before the worker serving it
// hands the receiving role to another worker. Most opens take microseconds
// and never reach it; a FIFO-like wait on a hung network mount does.
const StallAfter = time.Millisecond

// Session serves one connection: the re-executed opener's one socket, or
// one client of a server.
type Session struct {
	log  hclog.Logger
	conn *Conn
	rs   *Ruleset

	// root is the pinned root directory until the handshake has resolved
	// the policy's directories from it, then -1; dirs owns those
	// directories (nil for a server's session, whose server owns them).
	root int
	dirs *DirTable

	// end is what a fatal error does: the opener process exits with the
	// status; a server's session shuts its connection down.
	end       func(code int)
	fatalOnce sync.Once
	code      atomic.Int32 // the status a fatal error set

	// receiving is the receiving role; see "The receiving role" below.
	receiving sync.Mutex
	// workers are the session's workers, for the watchdog, which runs
	// every StallAfter while requests are being served (armed says so)
	// and passes the role on from a worker whose request has not ended
	// since its last look.
	workers []*worker // started so far; at most cap(workers); appended by spawn only
	watch   *time.Timer
	armed   atomic.Bool
	spawnMu sync.Mutex // serializes looks; guards ended, workers and the workers' seen counts
	ended   bool       // run's first worker returned: spawn no more
	wg      sync.WaitGroup

	// act, in a server's session, is told when each request begins and
	// ends, for the idle timeout; nil in an opener, which serves one
	// parent for as long as it likes.
	act Activity

	// pool, when not nil, lends the workers their buffers for one request
	// at a time (a server's sessions).
	pool *BufferPool

	// brk is the open broker, in an opener whose hello allowed one.
	brk brokerState
}

// The receiving role (Session.receiving, worker.holding, Session.look).
//
// Of a session's workers, one at a time holds the receiving role: it
// receives a request, serves it and receives the next, on its own, so the
// steady state runs on one thread with no hand-off between goroutines,
// like a sequential C opener. The others wait for the role on the mutex.
// When a request takes longer than StallAfter, the session's watchdog (a
// timer, which runs on a goroutine of its own) gives the role away for it,
// and starts another worker if the session has fewer than it may, so that
// a slow open does not hold up the rest; then the worker, once done,
// queues for the role again like any other. The watchdog looks every
// StallAfter while a role holder is serving a request, so a stall is seen
// after one to two StallAfter; the first request after an idle look arms
// it, and it disarms itself when it finds none, so that an idle session
// costs no wake-ups and a busy one no timer call per request (arming a
// timer can wake another thread, which costs more than the open). At most
// all the workers can be stalled at once, and then the next request waits
// for the first of them.
//
// Invariant: whoever turns a worker's holding flag from true to false,
// with a compare-and-swap (the worker itself in passOn, or the watchdog),
// unlocks the mutex, and no one else does; a worker sets its flag only
// just after it has locked the mutex. So the mutex is unlocked once per
// lock, never twice, and never stays locked by a worker that has given the
// role up. (sync.Mutex may be unlocked by a goroutine other than the one
// that locked it, which is what lets the watchdog do it.)
//
// The role is about cost, not safety: each message is whole
// (SOCK_SEQPACKET) and each worker receives into its own buffers, so two
// workers receiving at once is correct, only slower. That makes this race
// harmless: a watchdog that looks just as a request ends (it read the odd
// count before the worker ended the request) may take the role from the
// worker after it has gone back to receiving, so for one request two
// workers receive (and one more worker may be started). End of stream is
// sticky: every worker that receives after it sees it too, passes the
// role on and returns.

// Activity is told when each request of a session begins and ends (a
// server's idle timeout). Begin and End are called by the session's
// workers, concurrently.
type Activity interface {
	Begin()
	End()
}

// NewSession makes a session for one of a server's clients: it serves conn
// under rs, whose directories the caller owns and keeps open until Run
// returns. end is called once, with the status, when a violation ends the
// session; act may be nil.
func NewSession(log hclog.Logger, conn *Conn, rs *Ruleset, end func(code int), act Activity) *Session {
	return &Session{log: log, conn: conn, rs: rs, root: -1, end: end, act: act}
}

// ShareBuffers makes the session's workers take their buffers from p for
// each request and give them back after it, instead of holding their own;
// call it before Run.
func (s *Session) ShareBuffers(p *BufferPool) { s.pool = p }

// Recv receives one message into buf and oob, taking no descriptors; for a
// handshake the caller runs.
func (s *Session) Recv(buf, oob []byte) (protocol.Msg, error) { return s.conn.recv(buf, oob, nil) }

// TrySend sends msg without waiting, ignoring failure: last words before
// the connection is closed.
func (s *Session) TrySend(msg []byte) { s.conn.trySend(msg) }

// Ready answers the hello with ready, using buf.
func (s *Session) Ready(buf []byte) error { return s.ready(buf) }

// Run serves requests with n workers (0 means DefaultWorkers) until end of
// stream, and returns the status a fatal error set, or ExitOK.
func (s *Session) Run(n int) int { return s.run(n) }

// ServeProcess is the re-executed opener's session on its one socket sock:
// the handshake, then DefaultWorkers workers until end of stream. It
// returns the exit status, and takes ownership of root, the pinned root
// directory, and of sock. A violation exits the process from inside.
func ServeProcess(log hclog.Logger, sock, root int) int {
	c, err := newConn(sock)
	if err != nil {
		unix.Close(root)
		log.Error("bad invocation", "error", err)
		return protocol.ExitUsage
	}
	s := &Session{log: log, conn: c, end: os.Exit, root: root}
	defer func() {
		if s.root >= 0 {
			unix.Close(s.root)
		}
		if s.dirs != nil {
			s.dirs.Close()
		}
	}()
	if code := s.handshake(); code != protocol.ExitOK || s.rs == nil {
		return code // a failed handshake, or end of stream before it
	}
	code := s.run(DefaultWorkers)
	// The trampoline that started a broker closed its socket at execve:
	// end of stream, while the program still calls on the broker.
	s.waitBroker()
	if code != protocol.ExitOK {
		return code
	}
	log.Debug("end of stream, exiting")
	return protocol.ExitOK
}

// run is Run; the opener process calls it directly.
func (s *Session) run(n int) int {
	if n <= 0 {
		n = DefaultWorkers
	}
	// The first worker runs on this goroutine; the others are started by
	// the watchdog, one per stall, up to n: until a request stalls, which
	// most sessions never see, one goroutine serves.
	first := newWorker(s)
	s.workers = append(make([]*worker, 0, n), first)
	s.watch = time.AfterFunc(time.Hour, s.look)
	s.watch.Stop()
	first.run()
	s.spawnMu.Lock()
	s.ended = true // no more workers: every Add below happened before Wait
	s.spawnMu.Unlock()
	// Every worker sees the end of stream (it is sticky), so all of them
	// return.
	s.wg.Wait()
	s.watch.Stop()
	return int(s.code.Load())
}

// spawn starts another worker, if the session has fewer than it may; the
// watchdog calls it when it passes the role on from a stalled worker, so
// that someone receives the next request.
// The caller holds spawnMu.
func (s *Session) spawn() {
	if s.ended || len(s.workers) == cap(s.workers) {
		return
	}
	w := newWorker(s)
	s.workers = append(s.workers, w)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		w.run()
	}()
}

// arm starts the watchdog if it is not running; a worker calls it as it
// begins a request.
func (s *Session) arm() {
	if !s.armed.Load() && s.armed.CompareAndSwap(false, true) {
		s.watch.Reset(StallAfter)
	}
}

// look is the watchdog: it passes the role on from a worker still serving
// the request it served at the last look, and still at the same open of
// it, and runs again after StallAfter while any request is being served or
// has begun since the last look.
//
// Staying armed through a quiet moment between two requests is what keeps
// arm off the request path under steady traffic: a Reset from a worker
// wakes a second thread to wait for the timer (the runtime finds an idle
// scheduler slot and starts a thread for it), one futex wake and two
// context switches per arming; the Reset here, from the timer's own
// goroutine, finds no idle slot and wakes no one. The session goes quiet
// one look after its last request.
func (s *Session) look() {
	// Looks are serialized (two can overlap when a worker arms the
	// watchdog just as a look ends), and spawn appends to workers.
	s.spawnMu.Lock()
	defer s.spawnMu.Unlock()
	busy, began := false, false
	for _, w := range s.workers {
		// Only a worker serving while it holds the role needs watching:
		// one that gave the role up has nothing more to give.
		q, d := w.seq.Load(), w.done.Load()
		if q != w.seen {
			began = true
		}
		if q&1 == 1 && w.holding.Load() {
			busy = true
			if q == w.seen && d == w.seenDone {
				w.passOn()
				s.spawn()
			}
		}
		w.seen, w.seenDone = q, d
	}
	if busy || began {
		s.watch.Reset(StallAfter)
		return
	}
	s.armed.Store(false)
	// A request that began after its worker was looked at found the
	// watchdog still armed and did not arm it: look for one again.
	for _, w := range s.workers {
		if w.seq.Load()&1 == 1 && w.holding.Load() {
			s.arm()
			return
		}
	}
}

// handshake reads the hello, compiles the policy, opens the rule
// directories and answers ready.
func (s *Session) handshake() int {
	buf := make([]byte, protocol.MaxMessage)
	oob := make([]byte, protocol.OOBSize)
	m, err := s.conn.recv(buf, oob, nil)
	if err == io.EOF {
		s.log.Debug("end of stream before hello")
		return protocol.ExitOK
	}
	if err != nil {
		s.fatal(protocol.ExitProtocol, "receiving hello", err, ErrnoFor(err))
		return protocol.ExitProtocol
	}
	if m.Type != protocol.TypeHello || m.ID != 0 || m.NFD != 0 {
		protocol.CloseFDs(m.FDs)
		s.log.Error("first message is not a hello", "type", m.Type.String(), "id", m.ID, "fds", m.NFD)
		s.fatal(protocol.ExitProtocol, "handshake", errors.New("first message is not a hello with id 0"), unix.EPROTO)
		return protocol.ExitProtocol
	}
	h, err := protocol.DecodeHello(m.Payload)
	if err != nil {
		s.fatal(protocol.ExitProtocol, "decoding hello", err, ErrnoFor(err))
		return protocol.ExitProtocol
	}
	pol, err := policy.ParseLines(h.Rules)
	if err != nil {
		s.fatal(protocol.ExitProtocol, "policy in hello", err, unix.EINVAL)
		return protocol.ExitProtocol
	}
	// The directories are resolved now, once; the root is not needed
	// after that. The table's descriptors live as long as the process.
	s.dirs = NewDirTable(s.root, h.Flags&protocol.HelloNoOpenat2 == 0 && HaveOpenat2(s.root))
	rs, err := NewRuleset(s.log, pol, s.dirs)
	if err == nil && h.Flags&protocol.HelloBrokerOnly != 0 {
		err = s.brk.pinLoader(s.log, s.dirs)
	}
	unix.Close(s.root)
	s.root = -1
	if err != nil {
		// A missing rule directory is the kernel's answer, not a broken
		// protocol: the refusal says so (ReasonSystem) with its errno.
		var missing *MissingDirError
		if errors.As(err, &missing) {
			s.fatalReason(protocol.ExitProtocol, "policy in hello", err, missing.Errno, protocol.ReasonSystem)
			return protocol.ExitProtocol
		}
		s.fatal(protocol.ExitProtocol, "policy in hello", err, unix.EACCES)
		return protocol.ExitProtocol
	}
	s.rs = rs
	s.brk.allowed = h.Flags&protocol.HelloBroker != 0
	if err := s.ready(buf); err != nil {
		if errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) {
			return protocol.ExitOK // the parent went away before we were ready
		}
		s.log.Error("sending ready", "error", err)
		return protocol.ExitInternal
	}
	s.log.Info("ready", "rules", s.rs.rules, "openat2", s.rs.openat2)
	return protocol.ExitOK
}

// ready sends the ready message, using buf.
func (s *Session) ready(buf []byte) error {
	r := protocol.Ready{PID: uint32(os.Getpid()), Version: protocol.Version, Features: protocol.FeatureReadDir}
	if s.rs.openat2 {
		r.Features |= protocol.FeatureOpenat2
	}
	return s.conn.send(protocol.AppendReady(buf[:0], r), nil)
}

// fatal reports a violation that ends the session: it logs, tells the peer
// (best effort, id 0) and ends the session with code. Only the first call
// does anything. In the opener process it does not return.
func (s *Session) fatal(code int, what string, err error, errno syscall.Errno) {
	s.fatalReason(code, what, err, errno, protocol.ReasonProtocol)
}

// fatalReason is fatal with the reason the peer is told.
func (s *Session) fatalReason(code int, what string, err error, errno syscall.Errno, reason protocol.Reason) {
	s.fatalOnce.Do(func() {
		s.log.Error("exiting: "+what, "error", err, "status", code)
		if code == protocol.ExitProtocol {
			var b [protocol.HeaderSize + 8]byte
			msg := protocol.AppendError(b[:0], 0, protocol.ErrorReply{Errno: uint32(errno), Reason: reason})
			s.conn.trySend(msg)
		}
		s.code.Store(int32(code))
		s.end(code)
	})
}

// ErrnoFor picks the errno that reports err to the peer.
func ErrnoFor(err error) syscall.Errno {
	if errors.Is(err, protocol.ErrVersion) {
		return unix.EPROTONOSUPPORT
	}
	if errors.Is(err, protocol.ErrFDsDropped) {
		return unix.EMFILE
	}
	return unix.EPROTO
}

// errnoOf extracts the errno from a system call error, or EIO.
func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return unix.EIO
}

// HaveOpenat2 probes the kernel for a working openat2(2), on the pinned
// root.
func HaveOpenat2(root int) bool {
	fd, err := unix.Openat2(root, ".", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC})
	if err == nil {
		unix.Close(fd)
		return true
	}
	// ENOSYS on old kernels; a seccomp filter may answer EPERM instead.
	// Either way the fallback is the only way to open anything.
	return false
}
