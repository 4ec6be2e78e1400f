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

	// act, in a server's session, is told when each request begins and
	// ends, for the idle timeout; nil in an opener, which serves one
	// parent for as long as it likes.
	act Activity
}

// The receiving role (Session.receiving, worker.holding, worker.stall).
//
// Of a session's workers, one at a time holds the receiving role: it
// receives a request, serves it and receives the next, on its own, so the
// steady state runs on one thread with no hand-off between goroutines,
// like a sequential C opener. The others wait for the role on the mutex.
// When a request takes longer than StallAfter, the worker's stall timer
// (which runs on a goroutine of its own) gives the role away for it, so
// that a slow open does not hold up the rest; then the worker, once done,
// queues for the role again like any other. At most all the workers can be
// stalled at once, and then the next request waits for the first of them.
//
// Invariant: whoever turns a worker's holding flag from true to false,
// with a compare-and-swap (the worker itself in passOn, or its stall
// timer), unlocks the mutex, and no one else does; a worker sets its flag
// only just after it has locked the mutex. So the mutex is unlocked once
// per lock, never twice, and never stays locked by a worker that has given
// the role up. (sync.Mutex may be unlocked by a goroutine other than the
// one that locked it, which is what lets the timer do it.)
//
// The role is about cost, not safety: each message is whole (SOCK_SEQPACKET)
// and each worker receives into its own buffers, so two workers receiving
// at once is correct, only slower. That makes these races harmless: a
// stall timer that fires just as its request ends (Stop cannot stop a
// callback already running) may take the role from the worker after it
// has gone back to receiving, so for one request two workers receive;
// and a timer that fires after the request ended just hands the role on
// once more than needed. End of stream is sticky: every worker that
// receives after it sees it too, passes the role on and returns.

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
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			newWorker(s).run()
		}()
	}
	// Every worker sees the end of stream (it is sticky), so all of them
	// return.
	wg.Wait()
	return int(s.code.Load())
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
	unix.Close(s.root)
	s.root = -1
	if err != nil {
		s.fatal(protocol.ExitProtocol, "policy in hello", err, unix.EACCES)
		return protocol.ExitProtocol
	}
	s.rs = rs
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
	s.fatalOnce.Do(func() {
		s.log.Error("exiting: "+what, "error", err, "status", code)
		if code == protocol.ExitProtocol {
			var b [protocol.HeaderSize + 8]byte
			msg := protocol.AppendError(b[:0], 0, protocol.ErrorReply{Errno: uint32(errno), Reason: protocol.ReasonProtocol})
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
