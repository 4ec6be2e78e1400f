package child

import (
	"errors"
	"io"
	"os"
	"sync"
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

// server is the opener's state after the handshake. It is immutable while
// the workers run.
type server struct {
	log     hclog.Logger
	conn    *conn
	pol     *policy.Policy
	rules   []string        // pol's rules as written, for the audit log
	dirs    []int           // O_PATH descriptors of pol.Dirs(), -1 where opening failed
	dirErr  []syscall.Errno // why a dir could not be opened
	openat2 bool

	fatalOnce sync.Once

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
	s := &server{log: log, conn: c}
	if code := s.handshake(); code != protocol.ExitOK {
		return code
	}
	n := opt.Workers
	if n <= 0 {
		n = DefaultWorkers
	}
	codes := make(chan int, n)
	for i := 0; i < n; i++ {
		go func() { codes <- newWorker(s).run() }()
	}
	// Every worker sees the end of stream (it is sticky), so all of them
	// return; a worker that fails fatally exits the process itself.
	for i := 0; i < n; i++ {
		if code := <-codes; code != protocol.ExitOK {
			return code
		}
	}
	log.Debug("end of stream, exiting")
	return protocol.ExitOK
}

// handshake reads the hello, compiles the policy, opens the rule
// directories and answers ready.
func (s *server) handshake() int {
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
	s.pol, err = policy.ParseLines(h.Rules)
	if err != nil {
		s.fatal(protocol.ExitProtocol, "policy in hello", err, unix.EINVAL)
		return protocol.ExitProtocol
	}
	s.rules = s.pol.Strings()
	s.openat2 = h.Flags&protocol.HelloNoOpenat2 == 0 && haveOpenat2()
	for _, d := range s.pol.Dirs() {
		fd, err := unix.Open(d, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			// Not fatal: requests under this rule fail with the same errno,
			// which is what a plain open would have said.
			s.log.Warn("rule directory unavailable", "dir", d, "error", err)
			s.dirs = append(s.dirs, -1)
			s.dirErr = append(s.dirErr, errnoOf(err))
			continue
		}
		s.dirs = append(s.dirs, fd)
		s.dirErr = append(s.dirErr, 0)
	}
	r := protocol.Ready{PID: uint32(os.Getpid()), Version: protocol.Version}
	if s.openat2 {
		r.Features |= protocol.FeatureOpenat2
	}
	if err := s.conn.send(protocol.AppendReady(buf[:0], r), nil); err != nil {
		if errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) {
			return protocol.ExitOK // the parent went away before we were ready
		}
		s.log.Error("sending ready", "error", err)
		return protocol.ExitInternal
	}
	s.log.Info("ready", "rules", s.pol.Strings(), "openat2", s.openat2)
	return protocol.ExitOK
}

// fatal reports a violation that ends the opener: it logs, tells the parent
// (best effort, id 0) and exits. Only the first call does anything; the
// process exits inside it.
func (s *server) fatal(code int, what string, err error, errno syscall.Errno) {
	s.fatalOnce.Do(func() {
		s.log.Error("exiting: "+what, "error", err, "status", code)
		if code == protocol.ExitProtocol {
			var b [protocol.HeaderSize + 8]byte
			msg := protocol.AppendError(b[:0], 0, protocol.ErrorReply{Errno: uint32(errno), Reason: protocol.ReasonProtocol})
			s.conn.trySend(msg)
		}
		os.Exit(code)
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
