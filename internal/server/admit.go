//go:build linux

package server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/opener"
	"github.com/privsep-go/privsep/protocol"
)

// peer is what the kernel says about a client's end of a connection.
type peer struct {
	UID, GID uint32 // effective ids when it connected (SO_PEERCRED)
	PID      int32  // its process id, read through its pidfd where the kernel has SO_PEERPIDFD
	PIDFD    bool   // PID came from a pidfd, so it names the process that connected
}

// client is one accepted connection.
type client struct {
	id    uint64
	uc    *net.UnixConn // owns the descriptor; closed when the session is over
	rc    syscall.RawConn
	fd    int
	peer  peer
	log   hclog.Logger
	stuck atomic.Bool // the client stopped reading its replies

	sendTimeout time.Duration // how long a reply may wait for room in the client's queue
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
func peerOf(fd, fdinfo int) (peer, error) {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return peer{}, os.NewSyscallError("getsockopt SO_PEERCRED", err)
	}
	p := peer{UID: cred.Uid, GID: cred.Gid, PID: cred.Pid}
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
	c.sendTimeout = srv.cfg.SendTimeout
	cn := opener.ConnOf(c.fd, c.rc, c.sendBounded)
	gen := srv.acquire()
	defer srv.release(gen) // before sessions.Done, deferred above
	pol := gen.pols.For(c.peer.UID, c.peer.GID)
	idle := &idleWatch{}
	s := opener.NewSession(log, cn, gen.sets[pol], func(int) { c.shutdown(unix.SHUT_RDWR) }, idle)
	s.ShareBuffers(srv.workBufs)
	if !srv.handshake(c, s) {
		return
	}
	log.Info("client connected", "pidfd", c.peer.PIDFD, "sections", gen.pols.Sections(c.peer.UID, c.peer.GID))
	stopIdle := idle.watch(srv.cfg.IdleTimeout, func() {
		log.Info("closing an idle session", "idle_timeout", srv.cfg.IdleTimeout)
		c.shutdown(unix.SHUT_RD)
	})
	code := s.Run(srv.cfg.WorkersPerConn)
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
func (srv *server) handshake(c *client, s *opener.Session) bool {
	bp := srv.bufs.Get().(*[]byte)
	defer srv.bufs.Put(bp)
	buf := *bp
	oob := make([]byte, protocol.OOBSize)
	c.uc.SetReadDeadline(time.Now().Add(srv.cfg.HelloTimeout))
	m, err := s.Recv(buf, oob)
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
		s.TrySend(msg)
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
		return fail(opener.ErrnoFor(err), "receiving the hello", "error", err)
	case m.Type != protocol.TypeHello || m.ID != 0 || m.NFD != 0:
		protocol.CloseFDs(m.FDs)
		return fail(unix.EPROTO, "first message is not a hello with id 0", "type", m.Type.String(), "id", m.ID, "fds", m.NFD)
	}
	h, err := protocol.DecodeHello(m.Payload)
	if err != nil {
		return fail(opener.ErrnoFor(err), "decoding the hello", "error", err)
	}
	if len(h.Rules) != 0 || h.Flags != 0 {
		return fail(unix.EPROTO, "the hello carries rules or flags; a server's policy is its own", "rules", len(h.Rules), "flags", h.Flags)
	}
	if err := s.Ready(buf); err != nil {
		c.log.Debug("client left before ready", "error", err)
		return false
	}
	return true
}

// sendBounded sends one message to the client. When the client's queue is
// full it waits up to the send timeout, then ends the session: the
// connection is shut down, which wakes every send with EPIPE (a client that
// went away, to the worker) and every receive with end of stream. So a
// client that stops reading holds up only its own session, and only for
// that long.
func (c *client) sendBounded(msg []byte, fds []int) error {
	// The descriptor stays open until the session's workers are done (see
	// serve), so the first, non-blocking try needs no RawConn round trip.
	if err := protocol.Send(c.fd, msg, fds, unix.MSG_DONTWAIT); err != unix.EAGAIN {
		return err
	}
	return c.sendWaiting(msg, fds)
}

// sendWaiting waits for room in the client's queue, up to the bound.
func (c *client) sendWaiting(msg []byte, fds []int) error {
	t := time.AfterFunc(c.sendTimeout, func() {
		if c.stuck.CompareAndSwap(false, true) { // both workers may be waiting
			c.log.Warn("client does not read its replies: ending its session", "timeout", c.sendTimeout)
		}
		c.shutdown(unix.SHUT_RDWR)
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
