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
	DefaultMaxClients      = 256
	DefaultWorkersPerConn  = 2
	DefaultShutdownTimeout = 5 * time.Second
	DefaultSendTimeout     = 10 * time.Second
	DefaultHelloTimeout    = 10 * time.Second
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
	dirs    []int // every rule directory descriptor, shared by the rulesets
	bufs    sync.Pool
	nextID  atomic.Uint64

	mu       sync.Mutex
	conns    map[*client]struct{}
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
	srv := &server{cfg: cfg, log: log, conns: make(map[*client]struct{}), sets: make(map[*policy.Policy]*ruleset)}
	srv.allowed = allowFunc(cfg.AllowUIDs, cfg.AllowGIDs)
	srv.bufs.New = func() any { b := make([]byte, protocol.MaxMessage); return &b }
	srv.prepare()
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

// prepare makes a ruleset for every policy, opening each rule directory
// once for all of them.
func (srv *server) prepare() {
	type dir struct {
		fd    int
		errno syscall.Errno
	}
	opened := make(map[string]dir)
	useOpenat2 := haveOpenat2()
	for _, pol := range srv.cfg.Policies.Policies() {
		if srv.sets[pol] != nil {
			continue
		}
		rs := &ruleset{pol: pol, rules: pol.Strings(), openat2: useOpenat2}
		for _, d := range pol.Dirs() {
			e, ok := opened[d]
			if !ok {
				fd, err := unix.Open(d, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
				if err != nil {
					srv.log.Warn("rule directory unavailable", "dir", d, "error", err)
					e = dir{fd: -1, errno: errnoOf(err)}
				} else {
					e = dir{fd: fd}
					srv.dirs = append(srv.dirs, fd)
				}
				opened[d] = e
			}
			rs.dirs = append(rs.dirs, e.fd)
			rs.dirErr = append(rs.dirErr, e.errno)
		}
		srv.sets[pol] = rs
	}
	srv.log.Debug("policies ready", "policies", len(srv.sets), "directories", len(srv.dirs), "openat2", useOpenat2)
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
		c.peer, credErr = peerOf(int(fd))
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
	if len(srv.conns) >= srv.cfg.MaxClients {
		srv.mu.Unlock()
		c.log.Warn("refused connection: too many clients", "max_clients", srv.cfg.MaxClients)
		c.refuse(protocol.ReasonSystem, unix.EUSERS)
		return
	}
	srv.conns[c] = struct{}{}
	srv.sessions.Add(1)
	srv.mu.Unlock()
	go srv.serve(c)
}

// peerOf reads the credentials of fd's peer. With SO_PEERPIDFD the pid is
// read from a pidfd for the process that connected, which pins it: it
// cannot name another process that reused the number.
func peerOf(fd int) (Peer, error) {
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
	if pid, ok := pidfdPID(pidfd); ok {
		p.PID, p.PIDFD = pid, true
	}
	return p, nil
}

// pidfdPID reads the pid a pidfd refers to: with PIDFD_GET_INFO (Linux
// 6.13), else from its fdinfo. It fails when the process has exited.
func pidfdPID(pidfd int) (int32, bool) {
	info := unix.PidfdInfo{Mask: unix.PIDFD_INFO_PID}
	if err := unix.IoctlPidfdInfo(pidfd, &info); err == nil {
		if info.Mask&unix.PIDFD_INFO_PID != 0 && info.Tgid > 0 {
			return int32(info.Tgid), true
		}
		return 0, false
	} else if err == unix.ESRCH {
		return 0, false
	}
	f, err := os.Open("/proc/self/fdinfo/" + strconv.Itoa(pidfd))
	if err != nil {
		return 0, false
	}
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
		srv.mu.Unlock()
		srv.sessions.Done()
	}()
	log := c.log
	cn := connOf(c.fd, c.rc, &sendBound{timeout: srv.cfg.SendTimeout, client: c})
	pol := srv.cfg.Policies.For(c.peer.UID, c.peer.GID)
	s := &session{log: log, conn: cn, rs: srv.sets[pol], end: func(int) { c.shutdown(unix.SHUT_RDWR) }}
	if !srv.handshake(c, s) {
		return
	}
	log.Info("client connected", "pidfd", c.peer.PIDFD, "sections", srv.cfg.Policies.Sections(c.peer.UID, c.peer.GID))
	code := s.run(srv.cfg.WorkersPerConn)
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
	for _, fd := range srv.dirs {
		unix.Close(fd)
	}
	srv.dirs = nil
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
}

// ListenSocket creates a listening AF_UNIX SOCK_SEQPACKET socket at path for
// Serve, whose file has exactly mode (permission bits only) and, if gid is
// not -1, that group. No one can connect before the file has both: the
// socket's own mode, set before bind(2), bounds the mode bind gives the file
// (the umask can only remove bits), the file is then given exactly mode and
// its group through a descriptor for it (never following a symlink), and
// only then does the socket listen; until it does, a connect(2) is refused.
//
// An existing path is replaced only when it is a stale socket: a socket
// that nobody answers on (connect(2) says ECONNREFUSED). Anything else
// there, a file of another type or a socket that a server answers on, is an
// error, and nothing is removed.
func ListenSocket(path string, mode os.FileMode, gid int) (*Socket, error) {
	fail := func(err error) (*Socket, error) {
		return nil, &os.PathError{Op: "listen", Path: path, Err: err}
	}
	if mode&^os.ModePerm != 0 {
		return fail(fmt.Errorf("mode %v has bits other than permissions", mode))
	}
	if err := removeStale(path); err != nil {
		return fail(err)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail(os.NewSyscallError("socket", err))
	}
	closeFD := func(err error) (*Socket, error) {
		unix.Close(fd)
		return fail(err)
	}
	if err := unix.Fchmod(fd, uint32(mode)); err != nil {
		return closeFD(os.NewSyscallError("fchmod", err))
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		return closeFD(os.NewSyscallError("bind", err))
	}
	unlink := func(err error) (*Socket, error) {
		unix.Unlink(path)
		return closeFD(err)
	}
	pfd, err := unix.Open(path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return closeFD(os.NewSyscallError("open", err))
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return unlink(os.NewSyscallError("fstat", err))
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return closeFD(errors.New("the path was replaced while the socket was being made"))
	}
	if err := fchmodPath(pfd, uint32(mode)); err != nil {
		return unlink(os.NewSyscallError("chmod", err))
	}
	if gid != -1 {
		if err := unix.Fchownat(pfd, "", -1, gid, unix.AT_EMPTY_PATH); err != nil {
			return unlink(os.NewSyscallError("chown", err))
		}
	}
	if err := unix.Listen(fd, listenBacklog); err != nil {
		return unlink(os.NewSyscallError("listen", err))
	}
	f := os.NewFile(uintptr(fd), path)
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		unix.Unlink(path)
		return fail(err)
	}
	return &Socket{UnixListener: ln.(*net.UnixListener), Path: path, dev: uint64(st.Dev), ino: uint64(st.Ino)}, nil
}

// fchmodPath changes the mode of the file an O_PATH descriptor refers to.
func fchmodPath(pfd int, mode uint32) error {
	err := unix.Fchmodat(pfd, "", mode, unix.AT_EMPTY_PATH) // fchmodat2, Linux 6.6
	if err == unix.EOPNOTSUPP || err == unix.ENOSYS || err == unix.EINVAL {
		err = unix.Chmod("/proc/self/fd/"+strconv.Itoa(pfd), mode)
	}
	return err
}

// removeStale makes way for a new socket at path: nothing there is fine; a
// socket nobody answers on is removed; anything else is an error.
func removeStale(path string) error {
	var st unix.Stat_t
	switch err := unix.Lstat(path, &st); {
	case err == unix.ENOENT:
		return nil
	case err != nil:
		return os.NewSyscallError("lstat", err)
	case st.Mode&unix.S_IFMT != unix.S_IFSOCK:
		return errors.New("exists and is not a socket; refusing to replace it")
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
	unix.Close(fd)
	switch err {
	case unix.ECONNREFUSED:
		// Stale: its server is gone. Remove it, if it is still the socket
		// we probed.
		var now unix.Stat_t
		if err := unix.Lstat(path, &now); err != nil || now.Dev != st.Dev || now.Ino != st.Ino {
			return errors.New("changed while it was being checked")
		}
		if err := unix.Unlink(path); err != nil && err != unix.ENOENT {
			return os.NewSyscallError("unlink stale socket", err)
		}
		return nil
	case nil, unix.EAGAIN, unix.EPROTOTYPE:
		// Someone answers (or a listener of another socket type).
		return errors.New("a server is listening on this socket already (in use)")
	}
	return fmt.Errorf("checking whether the socket is stale: %w", os.NewSyscallError("connect", err))
}

// Remove removes the socket file if it is still the one ListenSocket made.
func (s *Socket) Remove() error {
	var st unix.Stat_t
	if err := unix.Lstat(s.Path, &st); err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return &os.PathError{Op: "lstat", Path: s.Path, Err: err}
	}
	if uint64(st.Dev) != s.dev || uint64(st.Ino) != s.ino {
		return nil // someone else's now
	}
	if err := unix.Unlink(s.Path); err != nil && err != unix.ENOENT {
		return &os.PathError{Op: "remove", Path: s.Path, Err: err}
	}
	return nil
}
