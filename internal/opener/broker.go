//go:build linux

package opener

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/broker"
	"github.com/privsep-go/privsep/policy"
	"github.com/privsep-go/privsep/protocol"
)

// brokerState is a session's open broker (privsep exec --broker): the
// hello allowed one, a broker message started it, and the opener process
// stays until it has ended.
type brokerState struct {
	allowed bool        // the hello set HelloBroker
	started atomic.Bool // a broker message was accepted: at most one
	wg      sync.WaitGroup
	// idle are workers kept between brokered opens: each has its own
	// buffers (the NUL-terminated path for openat2) and procfs cache, so
	// Serve's concurrent calls each take one.
	idle chan *worker

	// loader, with HelloBrokerOnly, is a session of its own over the
	// loader's rules, whose workers serve what the policy does not:
	// read-only opens of world-readable files, so that a dynamically
	// linked program starts. Nil without HelloBrokerOnly: then what the
	// policy does not serve goes ahead as the program's own call.
	loader     *Session
	loaderIdle chan *worker
}

// loaderRules are what --broker-only serves besides the policy, to
// world-readable files only (see brokerDecider.loaderOpen).
var loaderRules = []string{
	"r:/etc/ld.so.cache",
	"r:/usr/lib/ dirs=yes hardlinks=yes",
	"r:/usr/lib64/ dirs=yes hardlinks=yes",
	"r:/lib/ dirs=yes hardlinks=yes",
	"r:/lib64/ dirs=yes hardlinks=yes",
}

// pinLoader pins the loader's directories, at the handshake: from the
// pinned root, like the policy's.
func (b *brokerState) pinLoader(log hclog.Logger, t *DirTable) error {
	pol, err := policy.ParseLines(loaderRules)
	if err != nil {
		return err
	}
	rs, err := NewRuleset(log, pol, t)
	if err != nil {
		return err
	}
	b.loader = &Session{log: log, rs: rs, root: -1}
	b.loaderIdle = make(chan *worker, brokerIdle)
	return nil
}

// brokerIdle is how many deciding workers stay between calls: as many as
// Serve answers at once.
const brokerIdle = 8

// startBroker answers a broker message: it takes the listener, serves it
// on a goroutine of its own and acks. Anything but the one broker message
// the hello allowed is refused, and its descriptor closed.
func (w *worker) startBroker(m protocol.Msg) {
	s := w.s
	if err := protocol.DecodeBroker(m.Header, m.Payload); err != nil || len(m.FDs) != 1 {
		protocol.CloseFDs(m.FDs)
		w.protoError(m.Header, "malformed broker message", err)
		return
	}
	if !s.brk.allowed || !s.brk.started.CompareAndSwap(false, true) {
		protocol.CloseFDs(m.FDs)
		w.protoError(m.Header, "broker message refused: the hello did not allow one, or one was already served", nil)
		return
	}
	lfd := m.FDs[0]
	s.brk.idle = make(chan *worker, brokerIdle)
	s.brk.wg.Add(1)
	go func() {
		defer s.brk.wg.Done()
		// Serve owns lfd and returns nil once no process uses the filter.
		if err := broker.Serve(context.Background(), lfd, brokerDecider{s}); err != nil {
			s.log.Error("open broker ended", "error", err)
			return
		}
		s.log.Debug("open broker ended: the program has exited")
	}()
	s.log.Info("serving the program's opens (broker)")
	w.reply(protocol.AppendBrokerAck(w.out[:0], m.ID), nil)
}

// waitBroker waits for the broker, if one was started, to end: the program
// keeps calling on it after the trampoline's socket is gone.
func (s *Session) waitBroker() { s.brk.wg.Wait() }

// brokerDecider decides the program's calls with the session's policy and
// opens what it allows exactly as an Open request is opened
// (worker.openDecided). What the policy does not serve goes ahead with the
// program's own credentials (Continue), which grants nothing: the kernel
// then reads the path again, but as the program.
type brokerDecider struct{ s *Session }

func (b brokerDecider) Decide(r *broker.Request) broker.Answer {
	a := b.decide(r)
	if b.s.brk.loader != nil && a == broker.Continue() {
		// --broker-only: never let a call go ahead on its own, since
		// another thread could swap its path after the decision.
		return b.loaderOpen(r)
	}
	return a
}

func (b brokerDecider) decide(r *broker.Request) broker.Answer {
	if r.Path == "" || r.Resolve != 0 {
		// No path the opener can judge, or RESOLVE_ flags it would have
		// to honour on top of its own containment: the program's own call.
		return broker.Continue()
	}
	s := b.s
	d, err := s.rs.pol.Check(r.Path, r.Flags, r.Mode)
	if err != nil {
		if s.log.IsTrace() {
			s.log.Trace("brokered open continued: not the policy's", "pid", r.PID, "syscall", string(r.Syscall), "path", strconv.Quote(r.Path), "why", err.Error())
		}
		return broker.Continue()
	}
	w := get(s, s.brk.idle)
	defer put(s.brk.idle, w)
	w.brokered = r
	o := protocol.Open{Flags: uint32(r.Flags), Mode: r.Mode, Path: []byte(r.Path)}
	fd, st := w.openDecided(o, d, false)
	w.brokered = nil
	return brokerAnswer(s, r, fd, st)
}

// loaderOpen serves, under --broker-only, a call the policy did not: a
// read-only open beneath the loader's directories of a file every user
// may read (so that a root-only file in /usr/lib stays root's), by the
// same open path. Anything else fails with EACCES, or with the errno the
// open met (ENOENT, so that the loader searches on).
func (b brokerDecider) loaderOpen(r *broker.Request) broker.Answer {
	ls := b.s.brk.loader
	if r.Path == "" || r.Resolve != 0 || r.Flags&(unix.O_ACCMODE|unix.O_CREAT|unix.O_TRUNC) != unix.O_RDONLY {
		return broker.Fail(unix.EACCES)
	}
	d, err := ls.rs.pol.Check(r.Path, r.Flags, r.Mode)
	if err != nil {
		return broker.Fail(unix.EACCES)
	}
	w := get(ls, b.s.brk.loaderIdle)
	defer put(b.s.brk.loaderIdle, w)
	w.brokered = r
	o := protocol.Open{Flags: uint32(r.Flags), Mode: r.Mode, Path: []byte(r.Path)}
	fd, st := w.openDecided(o, d, false)
	w.brokered = nil
	if st.Reason != protocol.ReasonOK {
		if errno := syscall.Errno(st.Errno); st.Reason == protocol.ReasonSystem && errno != 0 {
			return broker.Fail(errno)
		}
		return broker.Fail(unix.EACCES)
	}
	var fst unix.Stat_t
	if err := unix.Fstat(fd, &fst); err != nil || fst.Mode&0o004 == 0 ||
		fst.Mode&unix.S_IFMT == unix.S_IFDIR && fst.Mode&0o001 == 0 {
		unix.Close(fd)
		return broker.Fail(unix.EACCES)
	}
	return broker.Place(fd)
}

// brokerAnswer turns the open path's outcome into the call's result. What
// the file is (missing, exists, not a directory) fails the call with the
// errno an Open request reports; a refusal of containment or file type,
// or an errno that says "not allowed", leaves the program its own call,
// so that it loses nothing it had.
func brokerAnswer(s *Session, r *broker.Request, fd int, st protocol.Status) broker.Answer {
	if st.Reason == protocol.ReasonOK {
		if !s.log.IsInfo() {
			return broker.Place(fd)
		}
		s.log.Info("brokered open", "pid", r.PID, "syscall", string(r.Syscall), "raw", strconv.Quote(r.Raw),
			"path", strconv.Quote(r.Path), "flags", policy.FlagString(r.Flags))
		return broker.Place(fd)
	}
	errno := syscall.Errno(st.Errno)
	switch {
	case st.Reason != protocol.ReasonSystem && st.Reason != protocol.ReasonLimit,
		errno == unix.EACCES, errno == unix.EPERM, errno == 0:
		return broker.Continue()
	}
	return broker.Fail(errno)
}

// BrokerError logs what Serve reports about a call it could not serve.
func (b brokerDecider) BrokerError(err error) { b.s.log.Warn("open broker", "error", err) }

// get takes an idle deciding worker of s, or makes one.
func get(s *Session, idle chan *worker) *worker {
	select {
	case w := <-idle:
		return w
	default:
	}
	w := newWorker(s)
	w.take()
	return w
}

func put(idle chan *worker, w *worker) {
	select {
	case idle <- w:
	default:
	}
}
