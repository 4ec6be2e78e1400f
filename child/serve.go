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

// ruleset is a compiled policy with its directories open: what serving
// requests needs. It is immutable once made, and may be shared by many
// sessions. The descriptors belong to the dirTable that opened them.
type ruleset struct {
	pol     *policy.Policy
	rules   []string        // pol's rules as written, for the audit log
	dirs    []int           // O_PATH descriptors of pol.Dirs(), then of the socket directories; -1 where resolving failed
	dirErr  []syscall.Errno // why a dir could not be opened
	sockDir map[string]int  // a unix listen rule's address → index in dirs of its directory
	onProc  []bool          // dirs[i] is on procfs: requests under it may land there
	openat2 bool
}

// newRuleset opens the policy's rule directories, and the directory of
// every unix-socket listen rule, through t: each resolved once, from the
// pinned root. A directory that cannot be opened is not fatal: requests
// under its rules fail with the same errno, which is what a plain open
// would have said. One that resolves into a process's own /proc directory
// is (an *OwnProcessError).
func newRuleset(log hclog.Logger, pol *policy.Policy, t *dirTable) (*ruleset, error) {
	rs := &ruleset{pol: pol, rules: pol.Strings(), openat2: t.openat2, sockDir: make(map[string]int)}
	trees := make(map[string]bool)
	for _, r := range pol.Rules() {
		if r.Tree {
			trees[r.Path] = true
		}
	}
	add := func(d string) error {
		fd, errno, err := t.open(d, trees[d])
		if err != nil {
			return err
		}
		if errno != 0 {
			log.Warn("rule directory unavailable", "dir", d, "error", errno.Error())
		}
		rs.dirs = append(rs.dirs, fd)
		rs.dirErr = append(rs.dirErr, errno)
		rs.onProc = append(rs.onProc, fd >= 0 && isProcfs(fd))
		return nil
	}
	for _, d := range pol.Dirs() {
		if err := add(d); err != nil {
			return nil, err
		}
	}
	for _, r := range pol.Rules() {
		if r.Network != "unix" {
			continue
		}
		d, _ := splitSocketPath(r.Addr)
		rs.sockDir[r.Addr] = len(rs.dirs)
		if err := add(d); err != nil {
			return nil, err
		}
	}
	return rs, nil
}

// session serves one connection: the re-executed opener's one socket, or
// one client of a server.
type session struct {
	log  hclog.Logger
	conn *conn
	rs   *ruleset

	// root is the pinned root directory until the handshake has resolved
	// the policy's directories from it, then -1; dirs owns those
	// directories (nil for a server's session, whose server owns them).
	root int
	dirs *dirTable

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

	// idle, in a server's session, counts requests for the idle timeout;
	// nil in an opener, which serves one parent for as long as it likes.
	idle *idleWatch
}

// serve runs the handshake and the workers, and returns the exit status.
// It takes ownership of root, the pinned root directory.
func serve(log hclog.Logger, sock, root int, opt Options) int {
	c, err := newConn(sock)
	if err != nil {
		unix.Close(root)
		log.Error("bad invocation", "error", err)
		return protocol.ExitUsage
	}
	s := &session{log: log, conn: c, end: os.Exit, root: root}
	defer func() {
		if s.root >= 0 {
			unix.Close(s.root)
		}
		if s.dirs != nil {
			s.dirs.close()
		}
	}()
	if code := s.handshake(); code != protocol.ExitOK || s.rs == nil {
		return code // a failed handshake, or end of stream before it
	}
	code := s.run(opt.Workers)
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
	// The directories are resolved now, once; the root is not needed
	// after that. The table's descriptors live as long as the process.
	s.dirs = newDirTable(s.root, h.Flags&protocol.HelloNoOpenat2 == 0 && haveOpenat2(s.root))
	rs, err := newRuleset(s.log, pol, s.dirs)
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
func (s *session) ready(buf []byte) error {
	r := protocol.Ready{PID: uint32(os.Getpid()), Version: protocol.Version, Features: protocol.FeatureReadDir}
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

// haveOpenat2 probes the kernel for a working openat2(2), on the pinned
// root.
func haveOpenat2(root int) bool {
	fd, err := unix.Openat2(root, ".", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC})
	if err == nil {
		unix.Close(fd)
		return true
	}
	// ENOSYS on old kernels; a seccomp filter may answer EPERM instead.
	// Either way the fallback is the only way to open anything.
	return false
}
