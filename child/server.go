//go:build linux

package child

// Server mode: one long-running opener on a listening SOCK_SEQPACKET unix
// socket, serving unrelated processes. The policy is the server's, fixed at
// start; each client is authenticated by the kernel's view of its end of
// the connection (SO_PEERCRED, and SO_PEERPIDFD for a pid that cannot be
// recycled under us), never by anything it says.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/policy"
	"github.com/privsep-go/privsep/protocol"
)

// Defaults for ServerConfig.
const (
	DefaultMaxClients        = 256
	DefaultMaxSessionsPerUID = 16
	DefaultIdleTimeout       = 5 * time.Minute
	DefaultWorkersPerConn    = 2
	DefaultShutdownTimeout   = 5 * time.Second
	DefaultSendTimeout       = 10 * time.Second
	DefaultHelloTimeout      = 10 * time.Second
)

// ServerConfig says how Serve serves.
type ServerConfig struct {
	// Policies gives each client its policy by its uid and primary gid
	// (policy.Unscoped gives everyone the same one). Required. Every policy
	// in it has its rule directories opened once, at start, shared by all
	// the sessions that use it.
	Policies *policy.ScopedPolicy

	// AllowUIDs and AllowGIDs are who may connect: a client whose uid is in
	// AllowUIDs or whose primary gid is in AllowGIDs (as the kernel reports
	// them for the connection: SO_PEERCRED, the effective ids at connect
	// time). When both are empty only the server's own effective uid may.
	// Anyone else is refused: an error with id 0, reason 1 (denied) and
	// EACCES, sent before anything is read, then the connection is closed.
	AllowUIDs, AllowGIDs []uint32

	// MaxClients bounds the sessions served at once; a connection beyond it
	// is refused with an error with id 0, reason 3 (system) and EUSERS.
	// Zero means DefaultMaxClients.
	MaxClients int

	// MaxSessionsPerUID bounds the sessions one uid (as SO_PEERCRED says)
	// has at once, so that one client cannot take every slot of MaxClients
	// and starve the others, root included. A connection beyond it is
	// refused with an error with id 0, reason 9 (limit) and EUSERS. Zero
	// means DefaultMaxSessionsPerUID.
	MaxSessionsPerUID int

	// IdleTimeout closes a session that has had no request in progress and
	// received none for this long (the check runs four times per timeout,
	// so the close comes between one and one and a quarter timeouts after
	// the last request): its read side is shut down, so it finishes like a
	// client that left. A client that never sends its hello is closed
	// after HelloTimeout instead. Zero means DefaultIdleTimeout.
	IdleTimeout time.Duration

	// WorkersPerConn is how many requests of one client are served at once;
	// zero means DefaultWorkersPerConn. Each worker holds about 80 KiB of
	// buffers while its session lasts.
	WorkersPerConn int

	// Logger receives the server's log: one line per connection, accepted or
	// refused, with the peer's uid, gid and pid as fields, and the audit
	// events of every session (denials at warn, grants at debug). Nil
	// discards it.
	Logger hclog.Logger

	// HelloTimeout bounds the wait for a new client's hello; zero means
	// DefaultHelloTimeout.
	HelloTimeout time.Duration

	// SendTimeout bounds how long a reply may wait for room in a client's
	// queue. A client that stops reading its replies for that long has its
	// session ended (the connection is shut down). Zero means
	// DefaultSendTimeout.
	SendTimeout time.Duration

	// ShutdownTimeout bounds how long Serve waits, once ctx is done, for
	// sessions to answer the requests they already received. Then their
	// connections are shut down outright. Zero means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
}

// Peer is what the kernel says about a client's end of a connection.
type Peer struct {
	UID, GID uint32 // effective ids when it connected (SO_PEERCRED)
	PID      int32  // its process id, read through its pidfd where the kernel has SO_PEERPIDFD
	PIDFD    bool   // PID came from a pidfd, so it names the process that connected
}

// Serve serves clients on ln, a listening AF_UNIX SOCK_SEQPACKET socket
// (net.ListenUnix("unixpacket", ...) or net.FileListener of one), until ctx
// is done. It takes ownership of ln and closes it.
//
// Each connection is authenticated from the kernel's view of its peer
// (ServerConfig.AllowUIDs) and then gets a session of its own: it sends a
// hello with no rules and no flags, the server answers ready with its pid,
// and from then on serves the client's requests under the client's policy
// (ServerConfig.Policies), exactly as an opener serves its parent. See
// PROTOCOL.md, "Server mode".
//
// When ctx is done Serve stops accepting, shuts down the read side of every
// connection so that its workers answer what they already received and
// finish, waits for them up to ShutdownTimeout, cuts off what is left, and
// returns nil. It returns an error if ln is not a SOCK_SEQPACKET socket, if
// the configuration is unusable, or if accepting fails for good.
func Serve(ctx context.Context, ln *net.UnixListener, cfg ServerConfig) error {
	srv, err := newServer(ln, cfg)
	if err != nil {
		ln.Close()
		return err
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	err = srv.accept(ctx, ln)
	ln.Close()
	srv.shutdown()
	return err
}

type server struct {
	cfg     ServerConfig
	log     hclog.Logger
	allowed func(uid, gid uint32) bool
	sets    map[*policy.Policy]*ruleset
	dirs    *dirTable // every rule directory descriptor, shared by the rulesets
	fdinfo  int       // O_PATH descriptor of /proc/self/fdinfo, or -1
	bufs    sync.Pool
	nextID  atomic.Uint64

	mu       sync.Mutex
	conns    map[*client]struct{}
	perUID   map[uint32]int // sessions of each uid in conns
	sessions sync.WaitGroup
}

// client is one accepted connection.
type client struct {
	id    uint64
	uc    *net.UnixConn // owns the descriptor; closed when the session is over
	rc    syscall.RawConn
	fd    int
	peer  Peer
	log   hclog.Logger
	stuck atomic.Bool // the client stopped reading its replies
}

func newServer(ln *net.UnixListener, cfg ServerConfig) (*server, error) {
	if cfg.Policies == nil {
		return nil, errors.New("privsep: server: no policy (ServerConfig.Policies)")
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	if cfg.MaxSessionsPerUID <= 0 {
		cfg.MaxSessionsPerUID = DefaultMaxSessionsPerUID
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.WorkersPerConn <= 0 {
		cfg.WorkersPerConn = DefaultWorkersPerConn
	}
	if cfg.HelloTimeout <= 0 {
		cfg.HelloTimeout = DefaultHelloTimeout
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = DefaultSendTimeout
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	rc, err := ln.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("privsep: server: %w", err)
	}
	var typ int
	var typErr error
	if err := rc.Control(func(fd uintptr) { typ, typErr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE) }); err != nil {
		return nil, fmt.Errorf("privsep: server: %w", err)
	}
	if typErr != nil || typ != unix.SOCK_SEQPACKET {
		return nil, fmt.Errorf("privsep: server: the listener is not a SOCK_SEQPACKET socket (listen on \"unixpacket\")")
	}
	srv := &server{cfg: cfg, log: log, conns: make(map[*client]struct{}), perUID: make(map[uint32]int), sets: make(map[*policy.Policy]*ruleset)}
	srv.allowed = allowFunc(cfg.AllowUIDs, cfg.AllowGIDs)
	srv.bufs.New = func() any { b := make([]byte, protocol.MaxMessage); return &b }
	if err := srv.prepare(); err != nil {
		return nil, err
	}
	return srv, nil
}

// allowFunc decides who may connect.
func allowFunc(uids, gids []uint32) func(uid, gid uint32) bool {
	if len(uids) == 0 && len(gids) == 0 {
		self := uint32(os.Geteuid())
		return func(uid, _ uint32) bool { return uid == self }
	}
	u, g := slices.Clone(uids), slices.Clone(gids)
	return func(uid, gid uint32) bool { return slices.Contains(u, uid) || slices.Contains(g, gid) }
}

// prepare makes a ruleset for every policy, resolving each directory once
// for all of them from the pinned root, and pins /proc/self/fdinfo for
// reading pids from pidfds.
func (srv *server) prepare() error {
	root, err := pinRoot()
	if err != nil {
		return fmt.Errorf("privsep: server: %w", err)
	}
	defer unix.Close(root)
	srv.dirs = newDirTable(root, haveOpenat2(root))
	for _, pol := range srv.cfg.Policies.Policies() {
		if srv.sets[pol] != nil {
			continue
		}
		rs, err := newRuleset(srv.log, pol, srv.dirs)
		if err != nil {
			srv.dirs.close()
			return fmt.Errorf("privsep: server: %w", err)
		}
		srv.sets[pol] = rs
	}
	srv.fdinfo = -1
	if fd, err := resolveDir(root, "/proc/self/fdinfo", srv.dirs.openat2); err == nil {
		srv.fdinfo = fd
	}
	srv.log.Debug("policies ready", "policies", len(srv.sets), "directories", len(srv.dirs.fds), "openat2", srv.dirs.openat2)
	return nil
}

// accept accepts connections until ln is closed.
func (srv *server) accept(ctx context.Context, ln *net.UnixListener) error {
	var backoff time.Duration
	for {
		uc, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if isTemporary(err) {
				// Out of descriptors or memory: say so, wait and go on,
				// as net/http does, rather than spin or give up.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				srv.log.Warn("accept failed; retrying", "error", err, "delay", backoff)
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
					return nil
				}
				continue
			}
			return fmt.Errorf("privsep: server: accept: %w", err)
		}
		backoff = 0
		srv.admit(uc)
	}
}

// isTemporary reports whether an accept error may go away by itself.
func isTemporary(err error) bool {
	for _, e := range []syscall.Errno{unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM, unix.ECONNABORTED, unix.EINTR, unix.EPROTO} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// admit authenticates a new connection and starts its session, or refuses
// it. It does not block: a refusal is one non-blocking send on an empty
// queue.
func (srv *server) admit(uc *net.UnixConn) {
	c := &client{id: srv.nextID.Add(1), uc: uc}
	var err error
	if c.rc, err = uc.SyscallConn(); err != nil {
		srv.log.Error("accepted connection unusable", "error", err)
		uc.Close()
		return
	}
	var credErr error
	c.rc.Control(func(fd uintptr) {
		c.fd = int(fd)
		c.peer, credErr = peerOf(int(fd), srv.fdinfo)
	})
	if credErr != nil {
		srv.log.Error("refused connection: cannot read its peer's credentials", "error", credErr)
		uc.Close()
		return
	}
	c.log = srv.log.With("conn", c.id, "uid", c.peer.UID, "gid", c.peer.GID, "pid", c.peer.PID)
	if !srv.allowed(c.peer.UID, c.peer.GID) {
		c.log.Warn("refused connection: uid and gid not allowed", "pidfd", c.peer.PIDFD)
		c.refuse(protocol.ReasonDenied, unix.EACCES)
		return
	}
	srv.mu.Lock()
	// The uid's own limit first: a client at it is told so, whether or
	// not the server as a whole is full.
	if n := srv.perUID[c.peer.UID]; n >= srv.cfg.MaxSessionsPerUID {
		srv.mu.Unlock()
		c.log.Warn("refused connection: this uid has as many sessions as one uid may", "sessions", n, "max_sessions_per_uid", srv.cfg.MaxSessionsPerUID)
		c.refuse(protocol.ReasonLimit, unix.EUSERS)
		return
	}
	if len(srv.conns) >= srv.cfg.MaxClients {
		srv.mu.Unlock()
		c.log.Warn("refused connection: too many clients", "max_clients", srv.cfg.MaxClients)
		c.refuse(protocol.ReasonSystem, unix.EUSERS)
		return
	}
	srv.conns[c] = struct{}{}
	srv.perUID[c.peer.UID]++
	srv.sessions.Add(1)
	srv.mu.Unlock()
	go srv.serve(c)
}

// peerOf reads the credentials of fd's peer. With SO_PEERPIDFD the pid is
// read from a pidfd for the process that connected, which pins it: it
// cannot name another process that reused the number.
func peerOf(fd, fdinfo int) (Peer, error) {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return Peer{}, os.NewSyscallError("getsockopt SO_PEERCRED", err)
	}
	p := Peer{UID: cred.Uid, GID: cred.Gid, PID: cred.Pid}
	pidfd, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PEERPIDFD)
	if err != nil {
		return p, nil // an older kernel (before 6.5), or the peer is gone
	}
	defer unix.Close(pidfd)
	if pid, ok := pidfdPID(fdinfo, pidfd); ok {
		p.PID, p.PIDFD = pid, true
	}
	return p, nil
}

// pidfdPID reads the pid a pidfd refers to: with PIDFD_GET_INFO (Linux
// 6.13), else from its fdinfo, in the pinned /proc/self/fdinfo (fdinfo; -1
// when there was none). It fails when the process has exited.
func pidfdPID(fdinfo, pidfd int) (int32, bool) {
	info := unix.PidfdInfo{Mask: unix.PIDFD_INFO_PID}
	if err := unix.IoctlPidfdInfo(pidfd, &info); err == nil {
		if info.Mask&unix.PIDFD_INFO_PID != 0 && info.Tgid > 0 {
			return int32(info.Tgid), true
		}
		return 0, false
	} else if err == unix.ESRCH {
		return 0, false
	}
	if fdinfo < 0 {
		return 0, false
	}
	fd, err := unix.Openat(fdinfo, strconv.Itoa(pidfd), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, false
	}
	f := os.NewFile(uintptr(fd), "fdinfo")
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Pid:"); ok {
			pid, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
			return int32(pid), err == nil && pid > 0
		}
	}
	return 0, false
}

// refuse tells a client it is not served (an error with id 0) and closes
// the connection. The reply is sent before anything is read, so it is the
// client's first message. Shutting down our read side first (which makes
// the client's further sends fail with EPIPE) and draining what the client
// had already queued means we close with nothing unread: the client then
// reads our reply rather than ECONNRESET.
func (c *client) refuse(reason protocol.Reason, errno syscall.Errno) {
	msg := protocol.AppendError(nil, 0, protocol.ErrorReply{Errno: uint32(errno), Reason: reason})
	c.rc.Write(func(fd uintptr) bool {
		_ = protocol.Send(int(fd), msg, nil, unix.MSG_DONTWAIT)
		return true
	})
	c.shutdown(unix.SHUT_RDWR)
	c.drain()
	c.uc.Close()
}

// drain discards (closing any descriptors) what is left in the receive
// queue of a connection whose read side is shut down, so that closing it
// does not make the client's next receive fail with ECONNRESET before it
// reads the reply that explains why.
func (c *client) drain() {
	var buf [protocol.HeaderSize]byte
	oob := make([]byte, protocol.OOBSize)
	c.rc.Read(func(fd uintptr) bool {
		// Bounded by what the queue held when it was shut.
		for range 10000 {
			_, err := protocol.Recv(int(fd), buf[:], oob, nil, unix.MSG_DONTWAIT)
			if err == unix.EAGAIN || err == io.EOF || errors.Is(err, unix.EBADF) {
				break
			}
		}
		return true
	})
}

// shutdown shuts the connection down (how is unix.SHUT_RD, SHUT_WR or
// SHUT_RDWR). It is safe after the connection was closed.
func (c *client) shutdown(how int) {
	c.rc.Control(func(fd uintptr) { unix.Shutdown(int(fd), how) })
}

// serve runs one client's session: handshake, then requests until end of
// stream.
func (srv *server) serve(c *client) {
	start := time.Now()
	defer func() {
		c.uc.Close()
		srv.mu.Lock()
		delete(srv.conns, c)
		if srv.perUID[c.peer.UID]--; srv.perUID[c.peer.UID] <= 0 {
			delete(srv.perUID, c.peer.UID)
		}
		srv.mu.Unlock()
		srv.sessions.Done()
	}()
	log := c.log
	cn := connOf(c.fd, c.rc, &sendBound{timeout: srv.cfg.SendTimeout, client: c})
	pol := srv.cfg.Policies.For(c.peer.UID, c.peer.GID)
	s := &session{log: log, conn: cn, rs: srv.sets[pol], root: -1, end: func(int) { c.shutdown(unix.SHUT_RDWR) }}
	if !srv.handshake(c, s) {
		return
	}
	log.Info("client connected", "pidfd", c.peer.PIDFD, "sections", srv.cfg.Policies.Sections(c.peer.UID, c.peer.GID))
	s.idle = &idleWatch{}
	stopIdle := s.idle.watch(srv.cfg.IdleTimeout, func() {
		log.Info("closing an idle session", "idle_timeout", srv.cfg.IdleTimeout)
		c.shutdown(unix.SHUT_RD)
	})
	code := s.run(srv.cfg.WorkersPerConn)
	stopIdle()
	if code != protocol.ExitOK {
		log.Warn("session ended on an error", "status", protocol.ExitStatusText(code), "duration", time.Since(start))
		return
	}
	log.Info("client disconnected", "duration", time.Since(start))
}

// handshake reads the client's hello and answers ready, or refuses it. A
// server's client sends no policy: a hello with rules or flags is refused
// (reason 6, EPROTO). It reports whether the session may go on.
func (srv *server) handshake(c *client, s *session) bool {
	bp := srv.bufs.Get().(*[]byte)
	defer srv.bufs.Put(bp)
	buf := *bp
	oob := make([]byte, protocol.OOBSize)
	c.uc.SetReadDeadline(time.Now().Add(srv.cfg.HelloTimeout))
	m, err := s.conn.recv(buf, oob, nil)
	c.uc.SetReadDeadline(time.Time{})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The timer may fire late, on a busy machine, after the hello came:
		// look once more before calling it a timeout.
		if m2, err2 := protocol.Recv(c.fd, buf, oob, nil, unix.MSG_DONTWAIT); err2 != unix.EAGAIN {
			m, err = m2, err2
		}
	}
	fail := func(errno syscall.Errno, what string, args ...any) bool {
		c.log.Warn("refused the handshake: "+what, args...)
		msg := protocol.AppendError(buf[:0], 0, protocol.ErrorReply{Errno: uint32(errno), Reason: protocol.ReasonProtocol})
		s.conn.trySend(msg)
		c.shutdown(unix.SHUT_RDWR)
		c.drain()
		return false
	}
	switch {
	case err == io.EOF:
		c.log.Debug("client left before its hello")
		return false
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fail(unix.ETIMEDOUT, "no hello in time", "timeout", srv.cfg.HelloTimeout)
	case err != nil:
		return fail(errnoFor(err), "receiving the hello", "error", err)
	case m.Type != protocol.TypeHello || m.ID != 0 || m.NFD != 0:
		protocol.CloseFDs(m.FDs)
		return fail(unix.EPROTO, "first message is not a hello with id 0", "type", m.Type.String(), "id", m.ID, "fds", m.NFD)
	}
	h, err := protocol.DecodeHello(m.Payload)
	if err != nil {
		return fail(errnoFor(err), "decoding the hello", "error", err)
	}
	if len(h.Rules) != 0 || h.Flags != 0 {
		return fail(unix.EPROTO, "the hello carries rules or flags; a server's policy is its own", "rules", len(h.Rules), "flags", h.Flags)
	}
	if err := s.ready(buf); err != nil {
		c.log.Debug("client left before ready", "error", err)
		return false
	}
	return true
}

// idleWatch tells an idle session from a busy one without reading a clock
// per request: workers count requests as they begin and end, and a timer
// that ticks four times per timeout closes the session once it has seen
// no request begin or end, and none in progress, for more than a timeout.
type idleWatch struct {
	busy atomic.Int32  // requests being served
	seq  atomic.Uint64 // bumped as each request begins and ends
}

func (iw *idleWatch) begin() { iw.busy.Add(1); iw.seq.Add(1) }
func (iw *idleWatch) end()   { iw.seq.Add(1); iw.busy.Add(-1) }

// watch starts the timer; idle is called once, from the timer, when the
// session has been idle for timeout. The returned function stops it.
func (iw *idleWatch) watch(timeout time.Duration, idle func()) (stop func()) {
	const ticks = 4
	period := max(timeout/ticks, time.Millisecond)
	var (
		mu      sync.Mutex
		stopped bool
		last    = iw.seq.Load()
		quiet   int // ticks in a row with nothing begun or ended
		t       *time.Timer
	)
	mu.Lock() // the callback reads t under mu
	defer mu.Unlock()
	t = time.AfterFunc(period, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		if seq := iw.seq.Load(); seq != last || iw.busy.Load() > 0 {
			last, quiet = seq, 0
		} else if quiet++; quiet >= ticks {
			// The last change came at or before the tick that saw it,
			// ticks periods ago: idle for at least timeout, and less
			// than timeout + period.
			stopped = true
			idle()
			return
		}
		t.Reset(period)
	})
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
	}
}

// shutdown ends every session: first their read sides, so that each
// answers what it already received and finishes; after ShutdownTimeout,
// both sides.
func (srv *server) shutdown() {
	srv.mu.Lock()
	n := len(srv.conns)
	for c := range srv.conns {
		c.shutdown(unix.SHUT_RD)
	}
	srv.mu.Unlock()
	if n > 0 {
		srv.log.Info("shutting down: finishing sessions", "sessions", n, "timeout", srv.cfg.ShutdownTimeout)
	}
	done := make(chan struct{})
	go func() {
		srv.sessions.Wait()
		close(done)
	}()
	select {
	case <-done:
		srv.closeDirs()
		return
	case <-time.After(srv.cfg.ShutdownTimeout):
	}
	srv.mu.Lock()
	n = len(srv.conns)
	for c := range srv.conns {
		c.shutdown(unix.SHUT_RDWR)
	}
	srv.mu.Unlock()
	srv.log.Warn("sessions still busy after the shutdown timeout: cut off", "sessions", n)
	select {
	case <-done:
		srv.closeDirs()
	case <-time.After(time.Second):
		// Workers stuck in a system call (an open on a hung mount) still
		// use the rule directories; close them when the last one returns.
		srv.log.Warn("abandoning sessions stuck in a system call", "sessions", n)
		go func() {
			<-done
			srv.closeDirs()
		}()
	}
}

func (srv *server) closeDirs() {
	srv.dirs.close()
	if srv.fdinfo >= 0 {
		unix.Close(srv.fdinfo)
		srv.fdinfo = -1
	}
}

// sendBound bounds a reply's wait for room in a client's queue.
type sendBound struct {
	timeout time.Duration
	client  *client
}

// sendBounded sends one message to a server's client. When the client's
// queue is full it waits up to the bound, then ends the session: the
// connection is shut down, which wakes every send with EPIPE (a client that
// went away, to the worker) and every receive with end of stream. So a
// client that stops reading holds up only its own session, and only for
// that long.
func (c *conn) sendBounded(msg []byte, fds []int) error {
	// The descriptor stays open until the session's workers are done (see
	// serve), so the first, non-blocking try needs no RawConn round trip.
	if err := protocol.Send(c.fd, msg, fds, unix.MSG_DONTWAIT); err != unix.EAGAIN {
		return err
	}
	return c.sendWaiting(msg, fds)
}

// sendWaiting waits for room in the client's queue, up to the bound.
func (c *conn) sendWaiting(msg []byte, fds []int) error {
	b := c.bound
	t := time.AfterFunc(b.timeout, func() {
		if b.client.stuck.CompareAndSwap(false, true) { // both workers may be waiting
			b.client.log.Warn("client does not read its replies: ending its session", "timeout", b.timeout)
		}
		b.client.shutdown(unix.SHUT_RDWR)
	})
	defer t.Stop()
	var err error
	werr := c.rc.Write(func(fd uintptr) bool {
		err = protocol.Send(int(fd), msg, fds, unix.MSG_DONTWAIT)
		return err != unix.EAGAIN
	})
	if werr != nil {
		return werr
	}
	return err
}

// Socket is a server's listening socket file, made by ListenSocket.
type Socket struct {
	*net.UnixListener
	Path     string
	dev, ino uint64 // the file's identity, so that Remove removes only ours
	dirDev   uint64 // its directory's identity, likewise
	dirIno   uint64
}

// ListenSocket creates a listening AF_UNIX SOCK_SEQPACKET socket at path for
// Serve, whose file has exactly mode (permission bits only) and, if gid is
// not -1, that group. path must be absolute and clean. Its directory is
// resolved once, from "/", never through a magic link, and everything else
// is done relative to it without following a symlink: the socket is bound
// in a private directory with its mode already set (fchmod before bind(2),
// under a zero umask) and its group, and only then moved to path in one
// step; it listens after that. No one can connect before the file has its
// mode and group. The listener's address is path; in a process without
// CAP_SYS_CHROOT it is path relative to "/" (see makeSocket).
//
// An existing path is replaced only when it is a stale socket: a socket
// that nobody answers on (connect(2) says ECONNREFUSED). Anything else
// there, a file of another type or a socket that a server answers on, is an
// error, and nothing is removed. To look, the existing file is exchanged
// with the new socket (renameat2 RENAME_EXCHANGE) and exchanged back unless
// it is stale, so for that moment a client of a live server at path is
// refused.
func ListenSocket(path string, mode os.FileMode, gid int) (*Socket, error) {
	fail := func(err error) (*Socket, error) {
		return nil, &os.PathError{Op: "listen", Path: path, Err: err}
	}
	if mode&^os.ModePerm != 0 {
		return fail(fmt.Errorf("mode %v has bits other than permissions", mode))
	}
	if err := policy.CheckListenAddr("unix", path); err != nil {
		return fail(err)
	}
	dirPath, name := splitSocketPath(path)
	dir, err := pinSocketDir(dirPath)
	if err != nil {
		return fail(err)
	}
	defer unix.Close(dir)
	var dst unix.Stat_t
	if err := unix.Fstat(dir, &dst); err != nil {
		return fail(os.NewSyscallError("fstat", err))
	}
	fd, st, err := makeSocket(socketSpec{
		dir: dir, dirPath: dirPath, name: name, typ: unix.SOCK_SEQPACKET,
		mode: uint32(mode), uid: -1, gid: gid, replace: replaceStale,
	})
	if err != nil {
		return fail(err)
	}
	if err := unix.Listen(fd, listenBacklog); err != nil {
		unix.Close(fd)
		return fail(os.NewSyscallError("listen", err))
	}
	f := os.NewFile(uintptr(fd), path)
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return fail(err)
	}
	return &Socket{UnixListener: ln.(*net.UnixListener), Path: path, dev: uint64(st.Dev), ino: uint64(st.Ino), dirDev: uint64(dst.Dev), dirIno: uint64(dst.Ino)}, nil
}

// pinSocketDir resolves a server socket's directory from the root, as the
// opener resolves rule directories.
func pinSocketDir(dirPath string) (int, error) {
	root, err := pinRoot()
	if err != nil {
		return -1, err
	}
	defer unix.Close(root)
	fd, err := resolveDir(root, dirPath, haveOpenat2(root))
	if err != nil {
		return -1, fmt.Errorf("directory %s: %w", dirPath, err)
	}
	return fd, nil
}

// replaceStale allows replacing a stale socket, and nothing else. The
// candidate is in the private directory pdir, as pname.
func replaceStale(pdir int, pname string, st *unix.Stat_t) error {
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return errors.New("exists and is not a socket; refusing to replace it")
	}
	errno, err := connectIn(pdir, pname, unix.SOCK_SEQPACKET)
	switch {
	case err != nil:
		return fmt.Errorf("checking whether the socket is stale: %w", err)
	case errno == unix.ECONNREFUSED:
		return nil // stale: its server is gone
	case errno == 0 || errno == unix.EAGAIN || errno == unix.EPROTOTYPE:
		// Someone answers (or a listener of another socket type).
		return errors.New("a server is listening on this socket already (in use)")
	}
	return fmt.Errorf("checking whether the socket is stale: %w", os.NewSyscallError("connect", errno))
}

// Remove removes the socket file if it is still the one ListenSocket made,
// in the directory it was made in.
func (s *Socket) Remove() error {
	dirPath, name := splitSocketPath(s.Path)
	dir, err := pinSocketDir(dirPath)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return &os.PathError{Op: "remove", Path: s.Path, Err: err}
	}
	defer unix.Close(dir)
	var dst, st unix.Stat_t
	if err := unix.Fstat(dir, &dst); err != nil {
		return &os.PathError{Op: "remove", Path: s.Path, Err: os.NewSyscallError("fstat", err)}
	}
	if dst.Dev != s.dirDev || dst.Ino != s.dirIno {
		return nil // not the directory it was made in
	}
	if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return &os.PathError{Op: "remove", Path: s.Path, Err: os.NewSyscallError("fstatat", err)}
	}
	if uint64(st.Dev) != s.dev || uint64(st.Ino) != s.ino {
		return nil // someone else's now
	}
	if err := unix.Unlinkat(dir, name, 0); err != nil && err != unix.ENOENT {
		return &os.PathError{Op: "remove", Path: s.Path, Err: os.NewSyscallError("unlinkat", err)}
	}
	return nil
}
