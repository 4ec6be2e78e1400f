//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/server"
	"github.com/privsep-go/privsep/policy"
	"github.com/privsep-go/privsep/protocol"
)

// ServerOptions says how MeasureServer measures.
type ServerOptions struct {
	Sessions int       // how many client sessions to hold at once
	Log      io.Writer // progress lines, may be nil

	// Clients, if not nil, makes the clients of the server listening on
	// sock, which open file, in place of NewServerClients in this
	// process. They are for clients in another process: then this one
	// needs descriptors for the server's ends of the sessions only.
	Clients func(sock, file string) (SessionClients, error)
}

// SessionClients hold the client sessions of a MeasureServer run:
// ServerClients in this process, or what ServerOptions.Clients makes.
type SessionClients interface {
	// Connect makes n sessions, each with its hello answered and one
	// file opened, and keeps them connected.
	Connect(ctx context.Context, n int) error
	// Again has every session open the file once more, and returns how
	// many were answered with a descriptor and why the first that was
	// not was not.
	Again(ctx context.Context) (served int, firstFailure string, err error)
	// Close ends every session.
	Close() error
}

// ServerReport is the result of MeasureServer; the JSON keys are part of
// privsep bench --json.
type ServerReport struct {
	Sessions int `json:"sessions"`
	// Served counts the sessions whose open after idling was answered
	// with a descriptor; FirstFailure says why the first one that was not
	// was not.
	Served       int    `json:"served"`
	FirstFailure string `json:"first_failure,omitempty"`

	// Growth of this process's memory from before the sessions connected
	// to when they had idled, per session: the Go heap and stacks in use
	// (runtime.MemStats HeapInuse+StackInuse) and the resident size
	// (VmRSS). With the clients in this process their share, a
	// descriptor number each, is in both and is small.
	HeapStackBytesPerSession float64 `json:"heap_stack_bytes_per_session"`
	RSSBytesPerSession       float64 `json:"rss_bytes_per_session"`

	ConnectNs    int64   `json:"connect_ns"`      // connecting all sessions, each with its hello and first open
	AgainNsPerOp float64 `json:"again_ns_per_op"` // the open after idling, per session
}

// FDLimitError is MeasureServer's error when this process may not hold
// the descriptors the run needs and cannot raise its limit (RLIMIT_NOFILE)
// that far: a benchmark skips on it rather than failing.
type FDLimitError struct {
	Need       uint64 // descriptors the run needs
	Soft, Hard uint64 // the limits as they are
	Err        error  // why they could not be raised
}

func (e *FDLimitError) Error() string {
	return fmt.Sprintf("%d descriptors needed, RLIMIT_NOFILE is %d (hard limit %d) and cannot be raised: %v",
		e.Need, e.Soft, e.Hard, e.Err)
}

func (e *FDLimitError) Unwrap() error { return e.Err }

const (
	// idleWait lets the sessions settle into their idle wait before the
	// memory is read: their first replies' buffers returned, their
	// workers parked.
	idleWait = 200 * time.Millisecond
	// replyTimeout bounds each connect and each reply, so that a server
	// that stops answering fails the run instead of hanging it where no
	// cancellation reaches (a blocking system call).
	replyTimeout = 30 * time.Second
	// spareFDs is room for what the process holds besides the sessions.
	spareFDs = 256
	// spareSessions is the room Serve's bounds leave above the sessions.
	spareSessions = 16
)

// MeasureServer measures server mode: it runs server.Serve in this
// process, holds opt.Sessions client sessions against it at once, each
// with its hello answered and one file opened, lets them idle, reads this
// process's memory, then has every session open the file once more.
// The clients are in this process too unless opt.Clients says otherwise,
// which saves a second process but needs a descriptor for both ends of
// every session: the descriptor limit is raised (RaiseNoFile), and stays
// raised; the run's own descriptors are all closed by the time it
// returns. ctx is noticed between sessions.
func MeasureServer(ctx context.Context, opt ServerOptions) (rep *ServerReport, err error) {
	n := opt.Sessions
	if n < 1 {
		return nil, fmt.Errorf("bench: server mode with %d sessions: want at least 1", n)
	}
	log := opt.Log
	if log == nil {
		log = io.Discard
	}
	clients, need := opt.Clients, 2*uint64(n)+spareFDs
	if clients == nil {
		clients = func(sock, file string) (SessionClients, error) { return NewServerClients(sock, file) }
	} else {
		need = uint64(n) + spareFDs
	}
	if err := RaiseNoFile(need); err != nil {
		return nil, fmt.Errorf("bench: server mode with %d sessions: %w", n, err)
	}
	dir, err := os.MkdirTemp("", "privsep-bench-server-")
	if err != nil {
		return nil, fmt.Errorf("bench: server mode: %w", err)
	}
	defer os.RemoveAll(dir)
	file, err := WriteTarget(dir)
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "s")
	stop, err := startServer(sock, file, n)
	if err != nil {
		return nil, fmt.Errorf("bench: server mode: %w", err)
	}
	defer func() {
		// Serve's own failure is what made the sessions fail, if it did.
		if serr := stop(); serr != nil {
			rep, err = nil, errors.Join(fmt.Errorf("bench: server mode: %w", serr), err)
		}
	}()
	cs, err := clients(sock, file)
	if err != nil {
		return nil, fmt.Errorf("bench: server mode: clients: %w", err)
	}
	defer func() {
		if cerr := cs.Close(); cerr != nil && err == nil {
			rep, err = nil, fmt.Errorf("bench: server mode: closing the clients: %w", cerr)
		}
	}()
	if rep, err = measureSessions(ctx, cs, n, log); err != nil {
		return nil, fmt.Errorf("bench: server mode with %d sessions: %w", n, err)
	}
	return rep, nil
}

// startServer listens on sock and serves a policy of file alone there,
// with room for n sessions, until the returned stop is called; stop waits
// for Serve to return and returns its error. Serve gets a context of its
// own, not the run's: it is stopped last, once the clients are closed,
// on every path, and a cancelled run ends between sessions rather than by
// having them shut down under its clients.
func startServer(sock, file string, n int) (stop func() error, err error) {
	pol, err := policy.Parse([]string{file})
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	ln, err := server.ListenSocket(sock, 0o600, -1)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- server.Serve(ctx, ln.UnixListener, server.Config{
			Policies:          policy.Unscoped(pol),
			MaxClients:        n + spareSessions,
			MaxSessionsPerUID: n + spareSessions,
			IdleTimeout:       time.Hour,
		})
	}()
	return func() error {
		cancel()
		return <-served
	}, nil
}

// measureSessions connects n sessions of cs, reads the memory once they
// idle, and has every session open the file again.
func measureSessions(ctx context.Context, cs SessionClients, n int, log io.Writer) (*ServerReport, error) {
	rep := &ServerReport{Sessions: n}
	before, err := readMem()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "privsep bench: server mode: connecting %d sessions\n", n)
	start := time.Now()
	if err := cs.Connect(ctx, n); err != nil {
		return nil, err
	}
	rep.ConnectNs = time.Since(start).Nanoseconds()
	time.Sleep(idleWait)
	after, err := readMem()
	if err != nil {
		return nil, err
	}
	rep.HeapStackBytesPerSession = float64(after.heapStack-before.heapStack) / float64(n)
	rep.RSSBytesPerSession = float64(after.rss-before.rss) / float64(n)
	fmt.Fprintf(log, "privsep bench: server mode: %d sessions connected in %v; idle, per session: heap+stacks %.0f B, RSS %.0f B\n",
		n, time.Duration(rep.ConnectNs).Round(time.Millisecond), rep.HeapStackBytesPerSession, rep.RSSBytesPerSession)
	start = time.Now()
	if rep.Served, rep.FirstFailure, err = cs.Again(ctx); err != nil {
		return nil, err
	}
	rep.AgainNsPerOp = float64(time.Since(start).Nanoseconds()) / float64(n)
	fmt.Fprintf(log, "privsep bench: server mode: open after idling: %d of %d served, %s\n",
		rep.Served, n, FormatNs(rep.AgainNsPerOp, "ns/op"))
	return rep, nil
}

// ServerClients are client sessions held by this process: raw
// SOCK_SEQPACKET connections, one descriptor each and nothing else,
// served one at a time and so sharing one set of buffers. They are
// MeasureServer's clients by default, and what another process holding
// the sessions for it (ServerOptions.Clients) runs.
type ServerClients struct {
	sock       string
	hello, req []byte // the messages every session sends
	buf, oob   []byte
	fds        []int // the descriptors of a reply
	conns      []int // one per session, in the order they connected
}

// NewServerClients returns clients, none connected yet, of the server
// listening on sock, which open file.
func NewServerClients(sock, file string) (*ServerClients, error) {
	hello, err := protocol.AppendHello(nil, &protocol.Hello{Version: protocol.Version})
	if err != nil {
		return nil, fmt.Errorf("hello: %w", err)
	}
	req, err := protocol.AppendOpenPath(nil, 1, unix.O_RDONLY, 0, file)
	if err != nil {
		return nil, fmt.Errorf("open request: %w", err)
	}
	return &ServerClients{sock: sock, hello: hello, req: req, buf: make([]byte, protocol.MaxMessage),
		oob: make([]byte, protocol.OOBSize), fds: make([]int, 0, protocol.MaxFDs)}, nil
}

// Connect makes n more sessions, each with its hello answered and one
// file opened. Errors name the session that failed, counting from 1.
func (cs *ServerClients) Connect(ctx context.Context, n int) error {
	for range n {
		i := len(cs.conns) + 1
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("before session %d: %w", i, err)
		}
		if err := cs.dial(); err != nil {
			return fmt.Errorf("session %d: %w", i, err)
		}
	}
	return nil
}

// dial connects one more session and has it say hello and open the file.
func (cs *ServerClients) dial() error {
	c, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	cs.conns = append(cs.conns, c) // closed by Close from now on
	tv := unix.NsecToTimeval(replyTimeout.Nanoseconds())
	// SO_SNDTIMEO also bounds the connect, which waits while the
	// listener's backlog is full.
	for _, opt := range []int{unix.SO_SNDTIMEO, unix.SO_RCVTIMEO} {
		if err := unix.SetsockoptTimeval(c, unix.SOL_SOCKET, opt, &tv); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	if err := unix.Connect(c, &unix.SockaddrUnix{Name: cs.sock}); err != nil {
		return os.NewSyscallError("connect", err)
	}
	if err := cs.ask(c, cs.hello, protocol.TypeReady); err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	if err := cs.ask(c, cs.req, protocol.TypeOpened); err != nil {
		return fmt.Errorf("first open: %w", err)
	}
	return nil
}

// Again has every session, idle until now, open the file once more, and
// counts those answered with a descriptor. A session not served is a
// figure, not a failure; a server that stops answering is.
func (cs *ServerClients) Again(ctx context.Context) (served int, firstFailure string, err error) {
	for i, c := range cs.conns {
		if err := ctx.Err(); err != nil {
			return served, firstFailure, fmt.Errorf("open after idling, before session %d: %w", i+1, err)
		}
		askErr := cs.ask(c, cs.req, protocol.TypeOpened)
		switch {
		case askErr == nil:
			served++
		case errors.Is(askErr, unix.EAGAIN):
			return served, firstFailure, fmt.Errorf("session %d: open after idling: %w", i+1, askErr)
		case firstFailure == "":
			firstFailure = fmt.Sprintf("session %d: %v", i+1, askErr)
		}
	}
	return served, firstFailure, nil
}

// ask sends msg on c and reads the reply, which must be of type want and
// carry as many descriptors as a reply of that type does; they are closed.
func (cs *ServerClients) ask(c int, msg []byte, want protocol.Type) error {
	if err := protocol.Send(c, msg, nil, 0); err != nil {
		return fmt.Errorf("sending %d bytes: %w", len(msg), noReply(err))
	}
	m, err := protocol.Recv(c, cs.buf, cs.oob, cs.fds, 0)
	if err != nil {
		return fmt.Errorf("receiving the reply: %w", noReply(err))
	}
	protocol.CloseFDs(m.FDs)
	if m.Type == protocol.TypeError {
		e, err := protocol.DecodeError(m.Payload)
		if err != nil {
			return fmt.Errorf("error reply: %w", err)
		}
		return fmt.Errorf("error reply: %v: %w", e.Reason, syscall.Errno(e.Errno))
	}
	if nfd := wantFDs(want); m.Type != want || len(m.FDs) != nfd {
		return fmt.Errorf("reply of type %v with %d descriptor(s), want %v with %d", m.Type, len(m.FDs), want, nfd)
	}
	return nil
}

// wantFDs is how many descriptors a reply of type t carries.
func wantFDs(t protocol.Type) int {
	if t == protocol.TypeOpened {
		return 1
	}
	return 0
}

// noReply says what the EAGAIN of a socket timeout means, keeping it
// matchable.
func noReply(err error) error {
	if errors.Is(err, unix.EAGAIN) {
		return fmt.Errorf("no answer within %v: %w", replyTimeout, err)
	}
	return err
}

// Close closes every session.
func (cs *ServerClients) Close() error {
	for _, c := range cs.conns {
		unix.Close(c)
	}
	cs.conns = nil
	return nil
}

// memReading is a reading of this process's memory.
type memReading struct{ heapStack, rss int64 }

// readMem reads the Go heap and stacks in use and the resident size.
// It first collects and returns freed memory to the system, so that
// pages freed before the reading neither count in the resident size nor
// stand ready for the sessions to reuse unseen.
func readMem() (memReading, error) {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, err := VmRSS(os.Getpid())
	if err != nil {
		return memReading{}, fmt.Errorf("resident size: %w", err)
	}
	return memReading{heapStack: int64(ms.HeapInuse + ms.StackInuse), rss: rss}, nil
}

// RaiseNoFile raises this process's descriptor limit to at least want,
// the hard limit too where it is lower and we may (CAP_SYS_RESOURCE).
// When it cannot, the error is an *FDLimitError.
func RaiseNoFile(want uint64) error {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("RLIMIT_NOFILE: %w", os.NewSyscallError("getrlimit", err))
	}
	if lim.Cur >= want { // RLIM_INFINITY included
		return nil
	}
	raised := unix.Rlimit{Cur: want, Max: max(lim.Max, want)}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &raised); err != nil {
		return &FDLimitError{Need: want, Soft: lim.Cur, Hard: lim.Max, Err: os.NewSyscallError("setrlimit", err)}
	}
	return nil
}
