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
	// Closing ln is what ends a blocked accept. A second Close returns at
	// once, without waiting for the first to finish, so the listener
	// could still be open when Serve returns: wait for the closer if it
	// started.
	closed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(closed)
		ln.Close()
	})
	rctx, cancel := context.WithCancel(ctx)
	reloads := make(chan struct{})
	go func() {
		defer close(reloads)
		srv.watchReloads(rctx)
	}()
	err = srv.accept(ctx, ln)
	cancel()
	<-reloads
	if stop() {
		ln.Close()
	} else {
		<-closed
	}
	srv.shutdown()
	return err
}

type server struct {
	cfg     Config
	log     hclog.Logger
	allowed func(uid, gid uint32) bool
	fdinfo  int // O_PATH descriptor of /proc/self/fdinfo, or -1
	// cur is the policy new sessions get; a session keeps the one it
	// started with, so a reload never changes a session in progress. An
	// old generation's directories are closed when its last session ends
	// (old holds those still in use).
	gensMu sync.Mutex
	cur    *generation
	old    map[*generation]struct{}
	bufs   sync.Pool
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
	orDefault(&cfg.MaxClients, DefaultMaxClients)
	orDefault(&cfg.MaxSessionsPerUID, DefaultMaxSessionsPerUID)
	orDefault(&cfg.IdleTimeout, DefaultIdleTimeout)
	orDefault(&cfg.WorkersPerConn, DefaultWorkersPerConn)
	orDefault(&cfg.HelloTimeout, DefaultHelloTimeout)
	orDefault(&cfg.SendTimeout, DefaultSendTimeout)
	orDefault(&cfg.ShutdownTimeout, DefaultShutdownTimeout)
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
	srv := &server{cfg: cfg, log: log, conns: make(map[*client]struct{}), perUID: make(map[uint32]int), workBufs: opener.NewBufferPool()}
	srv.allowed = allowFunc(cfg.AllowUIDs, cfg.AllowGIDs)
	srv.bufs.New = func() any { b := make([]byte, protocol.MaxMessage); return &b }
	if err := srv.prepare(); err != nil {
		return nil, err
	}
	return srv, nil
}

// orDefault gives a bound of Config its default when it is zero (unset) or
// negative (no bound could mean that).
func orDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
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

// generation is one policy with its rulesets: what sessions started
// between two reloads use.
type generation struct {
	pols *policy.ScopedPolicy
	sets map[*policy.Policy]*opener.Ruleset
	dirs *opener.DirTable // every rule directory descriptor, shared by the rulesets
	// Under server.gensMu:
	sessions int  // sessions using it
	retired  bool // a reload replaced it
}

// acquire returns the current generation for a new session, which
// gives it back with release when it ends.
func (srv *server) acquire() *generation {
	srv.gensMu.Lock()
	defer srv.gensMu.Unlock()
	g := srv.cur
	g.sessions++
	return g
}

func (srv *server) release(g *generation) {
	srv.gensMu.Lock()
	defer srv.gensMu.Unlock()
	if g.sessions--; g.sessions == 0 && g.retired {
		delete(srv.old, g)
		g.dirs.Close()
	}
}

// install makes g the generation of new sessions, and retires the one
// before: its directories are closed now if no session uses them, else by
// the last one's release.
func (srv *server) install(g *generation) {
	srv.gensMu.Lock()
	defer srv.gensMu.Unlock()
	prev := srv.cur
	srv.cur = g
	if prev == nil {
		return
	}
	prev.retired = true
	if prev.sessions == 0 {
		prev.dirs.Close()
		return
	}
	if srv.old == nil {
		srv.old = make(map[*generation]struct{})
	}
	srv.old[prev] = struct{}{}
}

// prepare makes the first generation and pins /proc/self/fdinfo for
// reading pids from pidfds.
func (srv *server) prepare() error {
	gen, root, err := srv.newGeneration(srv.cfg.Policies)
	if err != nil {
		return err
	}
	defer unix.Close(root)
	srv.install(gen)
	srv.fdinfo = -1
	if fd, err := opener.ResolveDir(root, "/proc/self/fdinfo", gen.dirs.Openat2()); err == nil {
		srv.fdinfo = fd
	}
	return nil
}

// newGeneration makes a ruleset for every policy of pols, resolving each
// directory once for all of them from a newly pinned root, so that a
// reload sees the directories as they are now. It returns the root, which
// the caller closes.
func (srv *server) newGeneration(pols *policy.ScopedPolicy) (*generation, int, error) {
	root, err := opener.PinRoot()
	if err != nil {
		return nil, -1, fmt.Errorf("privsep: server: %w", err)
	}
	dirs := opener.NewDirTable(root, opener.HaveOpenat2(root))
	gen := &generation{pols: pols, sets: make(map[*policy.Policy]*opener.Ruleset), dirs: dirs}
	for _, pol := range pols.Policies() {
		if gen.sets[pol] != nil {
			continue
		}
		rs, err := opener.NewRuleset(srv.log, pol, dirs)
		if err != nil {
			dirs.Close()
			unix.Close(root)
			return nil, -1, fmt.Errorf("privsep: server: %w", err)
		}
		gen.sets[pol] = rs
	}
	srv.log.Debug("policies ready", "policies", len(gen.sets), "directories", dirs.Len(), "openat2", dirs.Openat2())
	return gen, root, nil
}

// reload makes pols the policy of the sessions that start from now on. If
// it cannot be prepared, the old policy stays and the error says why.
func (srv *server) reload(pols *policy.ScopedPolicy) error {
	if pols == nil {
		return errors.New("privsep: server: reload: no policy")
	}
	gen, root, err := srv.newGeneration(pols)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	unix.Close(root)
	srv.install(gen)
	return nil
}

// watchReloads applies the policies sent on cfg.Reload until ctx is done.
func (srv *server) watchReloads(ctx context.Context) {
	if srv.cfg.Reload == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case r, ok := <-srv.cfg.Reload:
			if !ok {
				return
			}
			err := srv.reload(r.Policies)
			if err != nil {
				srv.log.Error("reload failed: keeping the old policy", "error", err)
			} else {
				srv.log.Info("policy reloaded: new sessions get the new policy", "policies", len(r.Policies.Policies()))
			}
			select {
			case r.Done <- err: // a nil Done blocks: skipped
			default:
			}
		}
	}
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
	srv.gensMu.Lock()
	srv.cur.dirs.Close()
	for g := range srv.old {
		g.dirs.Close()
	}
	srv.old = nil
	srv.gensMu.Unlock()
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
	srv := &server{cfg: cfg, log: log}
	gen, root, err := srv.newGeneration(cfg.Policies)
	if err != nil {
		return err
	}
	unix.Close(root)
	gen.dirs.Close()
	return nil
}
