//go:build linux

package server

// Server mode: one long-running opener on a listening SOCK_SEQPACKET unix
// socket, serving unrelated processes. The policy is the server's, fixed at
// start; each client is authenticated by the kernel's view of its end of
// the connection (SO_PEERCRED, and SO_PEERPIDFD for a pid that cannot be
// recycled under us), never by anything it says.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/opener"
	"github.com/privsep-go/privsep/policy"
	"github.com/privsep-go/privsep/protocol"
)

// Serve serves clients on ln until ctx is done, and closes ln; child.Serve
// documents it.
func Serve(ctx context.Context, ln *net.UnixListener, cfg Config) error {
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
	cfg     Config
	log     hclog.Logger
	allowed func(uid, gid uint32) bool
	sets    map[*policy.Policy]*opener.Ruleset
	dirs    *opener.DirTable // every rule directory descriptor, shared by the rulesets
	fdinfo  int              // O_PATH descriptor of /proc/self/fdinfo, or -1
	bufs    sync.Pool
	// workBufs lends the sessions' workers their buffers for one request
	// at a time, so that an idle session holds none.
	workBufs *opener.BufferPool
	nextID   atomic.Uint64

	mu       sync.Mutex
	conns    map[*client]struct{}
	perUID   map[uint32]int // sessions of each uid in conns
	sessions sync.WaitGroup
}

func newServer(ln *net.UnixListener, cfg Config) (*server, error) {
	if cfg.Policies == nil {
		return nil, errors.New("privsep: server: no policy (Config.Policies)")
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
	srv := &server{cfg: cfg, log: log, conns: make(map[*client]struct{}), perUID: make(map[uint32]int), sets: make(map[*policy.Policy]*opener.Ruleset), workBufs: opener.NewBufferPool()}
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
	root, err := opener.PinRoot()
	if err != nil {
		return fmt.Errorf("privsep: server: %w", err)
	}
	defer unix.Close(root)
	srv.dirs = opener.NewDirTable(root, opener.HaveOpenat2(root))
	for _, pol := range srv.cfg.Policies.Policies() {
		if srv.sets[pol] != nil {
			continue
		}
		rs, err := opener.NewRuleset(srv.log, pol, srv.dirs)
		if err != nil {
			srv.dirs.Close()
			return fmt.Errorf("privsep: server: %w", err)
		}
		srv.sets[pol] = rs
	}
	srv.fdinfo = -1
	if fd, err := opener.ResolveDir(root, "/proc/self/fdinfo", srv.dirs.Openat2()); err == nil {
		srv.fdinfo = fd
	}
	srv.log.Debug("policies ready", "policies", len(srv.sets), "directories", srv.dirs.Len(), "openat2", srv.dirs.Openat2())
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
	srv.dirs.Close()
	if srv.fdinfo >= 0 {
		unix.Close(srv.fdinfo)
		srv.fdinfo = -1
	}
}

// Check does what Serve does before it accepts, without a listener: it
// compiles every policy and resolves every rule directory from the pinned
// root, then closes them. It returns what Serve would fail to start with
// (a *opener.MissingDirError, an *opener.OwnProcessError, ...), or nil.
func Check(cfg Config) error {
	if cfg.Policies == nil {
		return errors.New("privsep: server: no policy (Config.Policies)")
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	srv := &server{cfg: cfg, log: log, sets: make(map[*policy.Policy]*opener.Ruleset)}
	if err := srv.prepare(); err != nil {
		return err
	}
	if srv.fdinfo >= 0 {
		unix.Close(srv.fdinfo)
	}
	srv.dirs.Close()
	return nil
}
