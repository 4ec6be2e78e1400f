//go:build linux

package child

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

// Options tune the opener.
type Options struct {
	// Workers is the number of requests served concurrently; 0 means
	// DefaultWorkers.
	Workers int
}

// ruleset is a compiled policy with its rule directories open: what
// serving requests needs. It is immutable once made, and may be shared by
// many sessions.
type ruleset struct {
	pol     *policy.Policy
	rules   []string        // pol's rules as written, for the audit log
	dirs    []int           // O_PATH descriptors of pol.Dirs(), -1 where opening failed
	dirErr  []syscall.Errno // why a dir could not be opened
	openat2 bool
}

// newRuleset opens the policy's rule directories. A directory that cannot
// be opened is not fatal: requests under its rules fail with the same
// errno, which is what a plain open would have said.
func newRuleset(log hclog.Logger, pol *policy.Policy, useOpenat2 bool) *ruleset {
	rs := &ruleset{pol: pol, rules: pol.Strings(), openat2: useOpenat2 && haveOpenat2()}
	for _, d := range pol.Dirs() {
		fd, err := unix.Open(d, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			log.Warn("rule directory unavailable", "dir", d, "error", err)
			rs.dirs = append(rs.dirs, -1)
			rs.dirErr = append(rs.dirErr, errnoOf(err))
			continue
		}
		rs.dirs = append(rs.dirs, fd)
		rs.dirErr = append(rs.dirErr, 0)
	}
	return rs
}

// close closes the rule directories.
func (rs *ruleset) close() {
	for _, fd := range rs.dirs {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// session serves one connection: the re-executed opener's one socket, or
// one client of a server.
type session struct {
	log  hclog.Logger
	conn *conn
	rs   *ruleset

	// end is what a fatal error does: the opener process exits with the
	// status; a server's session shuts its connection down.
	end       func(code int)
	fatalOnce sync.Once
	code      atomic.Int32 // the status a fatal error set

	// receiving is the receiving role. One worker holds it at a time and
	// serves request after request on its own, so the steady state runs on
	// one thread, with no hand-off between goroutines, like a sequential
	// C opener. When a request stalls (StallAfter), the role passes to
	// another worker, so one slow open does not hold up the rest; at most
	// the number of workers can stall at once.
	receiving sync.Mutex
}

// serve runs the handshake and the workers, and returns the exit status.
func serve(log hclog.Logger, sock int, opt Options) int {
	c, err := newConn(sock)
	if err != nil {
		log.Error("bad invocation", "error", err)
		return protocol.ExitUsage
	}
	s := &session{log: log, conn: c, end: os.Exit}
	if code := s.handshake(); code != protocol.ExitOK || s.rs == nil {
		return code // a failed handshake, or end of stream before it
	}
	code := s.run(opt.Workers)
	s.rs.close()
	if code != protocol.ExitOK {
		return code
	}
	log.Debug("end of stream, exiting")
	return protocol.ExitOK
}

// run serves requests with n workers (0 means DefaultWorkers) until end of
// stream, and returns the status a fatal error set, or ExitOK.
func (s *session) run(n int) int {
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
func (s *session) handshake() int {
	buf := make([]byte, protocol.MaxMessage)
	oob := make([]byte, protocol.OOBSize)
	m, err := s.conn.recv(buf, oob, nil)
	if err == io.EOF {
		s.log.Debug("end of stream before hello")
		return protocol.ExitOK
	}
	if err != nil {
		s.fatal(protocol.ExitProtocol, "receiving hello", err, errnoFor(err))
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
		s.fatal(protocol.ExitProtocol, "decoding hello", err, errnoFor(err))
		return protocol.ExitProtocol
	}
	pol, err := policy.ParseLines(h.Rules)
	if err != nil {
		s.fatal(protocol.ExitProtocol, "policy in hello", err, unix.EINVAL)
		return protocol.ExitProtocol
	}
	s.rs = newRuleset(s.log, pol, h.Flags&protocol.HelloNoOpenat2 == 0)
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
func (s *session) ready(buf []byte) error {
	r := protocol.Ready{PID: uint32(os.Getpid()), Version: protocol.Version}
	if s.rs.openat2 {
		r.Features |= protocol.FeatureOpenat2
	}
	return s.conn.send(protocol.AppendReady(buf[:0], r), nil)
}

// fatal reports a violation that ends the session: it logs, tells the peer
// (best effort, id 0) and ends the session with code. Only the first call
// does anything. In the opener process it does not return.
func (s *session) fatal(code int, what string, err error, errno syscall.Errno) {
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

// errnoFor picks the errno that reports err to the peer.
func errnoFor(err error) syscall.Errno {
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

// haveOpenat2 probes the kernel for a working openat2(2).
func haveOpenat2() bool {
	fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC})
	if err == nil {
		unix.Close(fd)
		return true
	}
	// ENOSYS on old kernels; a seccomp filter may answer EPERM instead.
	// Either way the fallback is the only way to open anything.
	return false
}
