//go:build linux

package parent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
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

// cancelPoll is how often a goroutine blocked on the socket for a context
// that can be cancelled but has no deadline looks at it again. Deadlines are
// waited for exactly.
const cancelPoll = 10 * time.Millisecond

// Opener is the parent's handle on a running opener. It is safe for
// concurrent use by many goroutines; replies are matched to requests by id
// and may arrive in any order.
//
// There is no goroutine that reads replies. The caller that finds nobody
// reading reads itself, hands other callers' replies to them, and when its
// own reply has come passes the reading on to a caller still waiting. A
// single caller therefore sends and receives on its own goroutine with no
// hand-off at all.
type Opener struct {
	conn    *sock // the socket: every use of it goes through conn
	log     hclog.Logger
	proc    *os.Process
	pid     int
	openat2 bool
	tail    logTail

	// The reader's state. Only the goroutine that holds the reading role
	// (reading == true, set under mu) touches it.
	rbuf      []byte
	roob      []byte
	rfds      []int
	rdeadline bool // a read deadline may be set on conn
	rmsg      protocol.Msg
	rerr      error
	tryRecv   func(uintptr) bool // made once: a closure per call would allocate

	calls sync.Pool // *call

	mu      sync.Mutex
	nextID  uint32
	pending map[uint32]*call // sent and not yet answered, abandoned ones included
	reading bool             // a caller holds the reading role
	closed  bool             // Close was called
	cause   error            // why the connection failed, if the parent saw it first
	err     error            // set once: every later call fails with it
	exitErr error            // what Close reports
	active  int              // calls in flight
	idle    sync.Cond        // signalled when active drops to zero
	flushes sync.WaitGroup   // flushes under way; counted under mu while err is nil

	terminated atomic.Bool // err is set: wakes a reader parked on the socket
	inFlight   int         // messages sent and not yet answered
	queue      []*call     // single opens waiting to go out in a group
	flushTimer *time.Timer // sends the queue when replies stop coming

	done      chan struct{} // closed when the opener has exited and err is set
	closeOnce sync.Once
}

// call is one request in flight.
type call struct {
	id   uint32
	wake chan struct{} // capacity 1: "look at your state again"
	buf  []byte        // the encoded request

	batch int // items sent in a batch request; 0 for a single open

	// A single open that may be coalesced keeps its request, so that it
	// can go out in a group instead (see coalesce.go).
	path        string
	flags, mode uint32
	// members are the single opens a group carries.
	members []*call

	// Written by the reader under o.mu, read by the caller once done.
	done      bool
	abandoned bool // the caller gave up; the reader closes what arrives
	err       error
	reply     protocol.ErrorReply
	status    []protocol.Status
	fds       []int
	list      []byte // a dir-list reply's payload, copied (readdir.go)
}

// newOpener takes ownership of fd, a connected SOCK_SEQPACKET socket.
func newOpener(fd int, log hclog.Logger) (*Opener, error) {
	conn, err := newSock(fd)
	if err != nil {
		return nil, err
	}
	o := &Opener{
		conn:    conn,
		log:     log,
		rbuf:    make([]byte, protocol.MaxMessage),
		roob:    make([]byte, protocol.OOBSize),
		rfds:    make([]int, 0, protocol.MaxFDs),
		pending: make(map[uint32]*call),
		done:    make(chan struct{}),
	}
	o.idle.L = &o.mu
	o.tryRecv = func(fd uintptr) bool {
		o.rmsg, o.rerr = protocol.Recv(int(fd), o.rbuf, o.roob, o.rfds, unix.MSG_DONTWAIT)
		return o.rerr != unix.EAGAIN
	}
	o.flushTimer = time.AfterFunc(time.Hour, func() { o.flush(true) })
	o.flushTimer.Stop()
	o.calls.New = func() any {
		return &call{wake: make(chan struct{}, 1), buf: make([]byte, 0, protocol.HeaderSize+8+protocol.MaxPath)}
	}
	return o, nil
}

// longAgo is a deadline in the past: setting it wakes a blocked reader.
var longAgo = time.Unix(1, 0)

// recv receives one message, waiting through the poller until one arrives
// or ctx ends. The caller holds the reading role (or is Start, before
// anyone else can read).
func (o *Opener) recv(ctx context.Context) (protocol.Msg, error) {
	var deadline time.Time
	if ctx.Done() != nil {
		deadline, _ = ctx.Deadline()
		stop := context.AfterFunc(ctx, func() { o.conn.setReadDeadline(longAgo) })
		defer stop()
	}
	if o.rdeadline || !deadline.IsZero() {
		o.conn.setReadDeadline(deadline)
		o.rdeadline = !deadline.IsZero()
	}
	for {
		rerr := o.conn.read(o.tryRecv)
		if rerr == nil {
			return o.rmsg, o.rerr
		}
		if errors.Is(rerr, os.ErrDeadlineExceeded) {
			if err := ctx.Err(); err != nil {
				o.rdeadline = true
				return protocol.Msg{}, err
			}
			if o.terminated.Load() {
				// terminateLocked woke us: every call has its answer.
				o.rdeadline = true
				return protocol.Msg{}, io.EOF
			}
			// A cancellation meant for an earlier reader: undo it.
			o.conn.setReadDeadline(deadline)
			continue
		}
		return protocol.Msg{}, rerr
	}
}

// PID returns the opener's process id.
func (o *Opener) PID() int { return o.pid }

// Openat2 reports whether the opener resolves paths with openat2(2) (true)
// or with its component-by-component fallback.
func (o *Opener) Openat2() bool { return o.openat2 }

// File returns a duplicate of the socket connected to the opener, as
// net.UnixConn.File does, for handing the connection to another program
// (privsep exec --keep-opener passes it to the program it execs, which
// picks it up with Inherited). The caller must not use this Opener while
// the other program does: requests would be matched to the wrong caller.
// Once Close has been called, File returns an error matching ErrClosed and
// os.ErrClosed.
func (o *Opener) File() (*os.File, error) {
	o.mu.Lock()
	closed := o.closed
	o.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("privsep: opener socket: %w", errSocketClosed)
	}
	f, err := o.conn.dup()
	if err != nil {
		return nil, fmt.Errorf("privsep: duplicating the opener socket: %w", err)
	}
	return f, nil
}

// Done returns a channel that is closed when the opener has exited, after
// Close or on its own. Err then says why.
func (o *Opener) Done() <-chan struct{} { return o.done }

// Err returns nil while the opener runs; after Done is closed it returns
// ErrClosed after a clean Close, or the *ExitError that ended it.
func (o *Opener) Err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// Open asks the opener to open path with flag (os.O_RDONLY, ...) and perm,
// like os.OpenFile. The path must be absolute and clean.
//
// Errors are *fs.PathError. A refusal by the opener's policy matches
// ErrDenied and fs.ErrPermission and carries a *RefusedError; a failure of
// the open itself carries the real errno (errors.Is(err, fs.ErrNotExist)
// works). If the opener has died every call returns its *ExitError.
func (o *Opener) Open(ctx context.Context, path string, flag int, perm fs.FileMode) (*os.File, error) {
	if err := policy.CheckPath(path); err != nil {
		return nil, pathRefusal(path, err)
	}
	if flag < 0 || int64(flag) > math.MaxUint32 {
		// The wire carries 32 bits; do not let truncation change the request.
		return nil, &fs.PathError{Op: "open", Path: path, Err: &RefusedError{Reason: protocol.ReasonBadRequest, Errno: syscall.EINVAL, Why: "flags do not fit in 32 bits"}}
	}
	c := o.getCall()
	var err error
	c.path, c.flags, c.mode = path, uint32(flag), unixMode(flag, perm)
	c.buf, err = protocol.AppendOpenPath(c.buf[:0], 0, c.flags, c.mode, path)
	if err != nil {
		o.putCall(c)
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	if err := o.roundTrip(ctx, c); err != nil {
		// The call may still be in pending (abandoned); the reader owns it.
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		return nil, err
	}
	defer o.putCall(c)
	if c.err != nil {
		return nil, callError("open", path, c.err)
	}
	if len(c.fds) == 0 {
		return nil, replyError(path, c.reply)
	}
	return os.NewFile(uintptr(c.fds[0]), path), nil
}

// callError reports a call that got no reply of its own: the connection's
// end (ErrClosed or *ExitError) as it is, anything else (descriptors lost at
// the descriptor limit) as a *fs.PathError.
func callError(op, path string, err error) error {
	var ee *ExitError
	if err == ErrClosed || errors.As(err, &ee) {
		return err
	}
	return &fs.PathError{Op: op, Path: path, Err: err}
}

// pathRefusal reports a path the parent refuses before asking: the opener
// would refuse it the same way.
func pathRefusal(path string, err error) error {
	var r policy.Refusal
	if !errors.As(err, &r) {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return &fs.PathError{Op: "open", Path: path, Err: &RefusedError{Reason: protocol.ReasonBadRequest, Errno: r.Errno, Why: r.Why}}
}

// unixMode converts perm to open(2) mode bits. They only matter when the
// flags create a file; otherwise the opener is sent 0.
func unixMode(flag int, perm fs.FileMode) uint32 {
	if flag&(unix.O_CREAT|unix.O_TMPFILE) == 0 {
		return 0
	}
	m := uint32(perm.Perm())
	if perm&fs.ModeSetuid != 0 {
		m |= unix.S_ISUID
	}
	if perm&fs.ModeSetgid != 0 {
		m |= unix.S_ISGID
	}
	if perm&fs.ModeSticky != 0 {
		m |= unix.S_ISVTX
	}
	return m
}

func (o *Opener) getCall() *call {
	c := o.calls.Get().(*call)
	c.done, c.abandoned, c.err, c.batch = false, false, nil, 0
	c.reply = protocol.ErrorReply{}
	c.status, c.fds = c.status[:0], c.fds[:0]
	c.path, c.flags, c.mode, c.members = "", 0, 0, c.members[:0]
	select {
	case <-c.wake: // a stale wake-up from the call's previous life
	default:
	}
	return c
}

func (o *Opener) putCall(c *call) {
	if cap(c.buf) > 64<<10 {
		c.buf = nil
	}
	o.calls.Put(c)
}

// roundTrip sends c's request (c.buf, whose id it fills in) and waits for
// the reply. On a nil return c is done and the caller owns c.fds. On a
// context error the call is abandoned and must not be reused: the reader
// closes whatever arrives for it.
func (o *Opener) roundTrip(ctx context.Context, c *call) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	if o.err != nil {
		err := o.err
		o.mu.Unlock()
		return err
	}
	if o.closed {
		o.mu.Unlock()
		return ErrClosed
	}
	o.active++
	if o.enqueueLocked(c) {
		o.mu.Unlock()
		defer o.release()
		return o.wait(ctx, c)
	}
	o.registerLocked(c)
	o.mu.Unlock()
	defer o.release()

	if err := o.send(ctx, c.buf); err != nil {
		o.mu.Lock()
		if c.done { // the connection failed meanwhile
			o.mu.Unlock()
			return nil
		}
		delete(o.pending, c.id)
		o.inFlight--
		if !o.reading {
			// We may hold the wake-up meant to make a reader; pass it on.
			o.promoteLocked()
		}
		closed := o.closed
		o.mu.Unlock()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case closed:
			return ErrClosed
		}
		o.connFailed(normalizeSendErr(err))
		<-o.done
		return o.Err()
	}
	return o.wait(ctx, c)
}

// normalizeSendErr makes a send that failed because the opener is gone end
// of stream: its exit status says why.
func normalizeSendErr(err error) error {
	if errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) {
		return io.EOF
	}
	return err
}

// putID writes the request id into an encoded message.
func putID(msg []byte, id uint32) {
	msg[4], msg[5], msg[6], msg[7] = byte(id), byte(id>>8), byte(id>>16), byte(id>>24)
}

func (o *Opener) release() {
	o.mu.Lock()
	o.active--
	if o.active == 0 {
		o.idle.Broadcast()
	}
	o.mu.Unlock()
}

// send sends one message, waiting for room in the opener's queue without
// ignoring ctx.
func (o *Opener) send(ctx context.Context, msg []byte) error {
	return o.conn.send(ctx, msg)
}

// wait waits for c's reply, reading the socket itself when nobody else is.
func (o *Opener) wait(ctx context.Context, c *call) error {
	for {
		o.mu.Lock()
		if c.done {
			o.mu.Unlock()
			return nil
		}
		if !o.reading {
			o.reading = true
			o.mu.Unlock()
			err := o.read(ctx, c)
			o.mu.Lock()
			o.reading = false
			if err != nil && !c.done {
				// Before promoting: the role must go to a caller that
				// stays, not back to this one.
				c.abandoned = true
			}
			o.promoteLocked()
			if c.done {
				o.mu.Unlock()
				return nil
			}
			if err != nil {
				o.mu.Unlock()
				return err
			}
			o.mu.Unlock()
			continue
		}
		o.mu.Unlock()
		select {
		case <-c.wake:
		case <-ctx.Done():
			o.mu.Lock()
			if c.done {
				o.mu.Unlock()
				return nil
			}
			c.abandoned = true
			if !o.reading {
				// We may have swallowed the wake-up that would have made us
				// the reader; pass it on.
				o.promoteLocked()
			}
			o.mu.Unlock()
			return ctx.Err()
		}
	}
}

// promoteLocked wakes one caller that is waiting for its reply, so that it
// takes over reading. Called with mu held and reading false.
func (o *Opener) promoteLocked() {
	waiting := func(p *call) bool {
		if p.done || p.abandoned {
			return false
		}
		wakeUp(p)
		return true
	}
	for _, p := range o.pending {
		if len(p.members) == 0 {
			if waiting(p) {
				return
			}
			continue
		}
		for _, m := range p.members {
			if waiting(m) {
				return
			}
		}
	}
	for _, m := range o.queue {
		if waiting(m) {
			return
		}
	}
}

// read receives replies and hands them out until c is done, ctx ends, or the
// connection fails. The caller holds the reading role.
func (o *Opener) read(ctx context.Context, c *call) error {
	for {
		m, err := o.recv(ctx)
		if err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			return err
		}
		if err != nil {
			if m.Type != 0 && errors.Is(err, protocol.ErrFDsDropped) {
				// We are at our descriptor limit; the stream is still in
				// step. Fail just this request, with EMFILE.
				o.mu.Lock()
				known := o.failOneLocked(m.Header, err)
				done := c.done
				o.mu.Unlock()
				if !known {
					// A reply to nothing we asked is a violation, whatever
					// the kernel did to its descriptors.
					o.connFailed(fmt.Errorf("protocol: %s reply for unknown request id %d", m.Type, m.ID))
					<-o.done
					return nil
				}
				if done {
					return nil
				}
				continue
			}
			o.connFailed(err)
			<-o.done
			return nil
		}
		o.mu.Lock()
		err = o.dispatchLocked(m)
		done := c.done
		o.mu.Unlock()
		if err != nil {
			o.connFailed(err)
			<-o.done
			return nil
		}
		// A reply made room in the pipeline: send what queued meanwhile.
		o.flush(false)
		if done {
			return nil
		}
	}
}

// failOneLocked fails the request a message answered when its descriptors
// were lost in transit.
func (o *Opener) failOneLocked(h protocol.Header, err error) bool {
	c, ok := o.pending[h.ID]
	if !ok || h.ID == 0 {
		return false
	}
	delete(o.pending, h.ID)
	o.inFlight--
	err = fmt.Errorf("privsep: reply %d: %w", h.ID, err)
	for _, m := range c.members {
		if !m.abandoned {
			m.err, m.done = err, true
			wakeUp(m)
		}
	}
	if c.abandoned || len(c.members) > 0 {
		c.members = c.members[:0]
		o.putCall(c)
		return true
	}
	c.err, c.done = err, true
	wakeUp(c)
	return true
}

func wakeUp(c *call) {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// dispatchLocked hands one well-framed reply to its call. It owns m.FDs: it
// gives them to the call or closes them. A non-nil error is a protocol
// violation by the opener, fatal for the connection.
func (o *Opener) dispatchLocked(m protocol.Msg) error {
	c, ok := o.pending[m.ID]
	if m.ID == 0 || !ok {
		protocol.CloseFDs(m.FDs)
		if m.ID == 0 && m.Type == protocol.TypeError {
			// The opener's last word before it exits on a violation.
			if e, err := protocol.DecodeError(m.Payload); err == nil {
				return fmt.Errorf("the opener reported: %s (%v)", e.Reason, syscall.Errno(e.Errno))
			}
		}
		return fmt.Errorf("protocol: %s reply for unknown request id %d", m.Type, m.ID)
	}
	var err error
	switch m.Type {
	case protocol.TypeOpened:
		if c.batch != 0 || m.NFD != 1 {
			err = fmt.Errorf("protocol: opened reply %d to a batch, or with %d descriptors", m.ID, m.NFD)
		} else {
			err = protocol.DecodeOpened(m.Payload)
		}
	case protocol.TypeError:
		if m.NFD != 0 {
			err = fmt.Errorf("protocol: error reply %d with %d descriptors", m.ID, m.NFD)
		} else {
			c.reply, err = protocol.DecodeError(m.Payload)
		}
	case protocol.TypeBatchReply:
		var ok int
		c.status, ok, err = protocol.DecodeBatchReply(m.Payload, c.status)
		if err == nil && (c.batch == 0 || len(c.status) != c.batch || ok != len(m.FDs)) {
			err = fmt.Errorf("protocol: batch reply %d has %d items and %d descriptors for a request of %d items with %d successes",
				m.ID, len(c.status), len(m.FDs), c.batch, ok)
		}
	case protocol.TypeDirList:
		err = o.dirListLocked(c, m)
	default:
		err = fmt.Errorf("protocol: unexpected %s message with id %d", m.Type, m.ID)
	}
	if err != nil {
		protocol.CloseFDs(m.FDs)
		return err
	}
	delete(o.pending, m.ID)
	o.inFlight--
	if len(c.members) > 0 {
		o.dispatchGroupLocked(c, m.Type, m.FDs)
		return nil
	}
	if c.abandoned {
		protocol.CloseFDs(m.FDs)
		o.putCall(c)
		return nil
	}
	c.fds = append(c.fds[:0], m.FDs...)
	c.done = true
	wakeUp(c)
	return nil
}

// connFailed records why the connection can no longer be used and stops
// the opener if it is still running. The process waiter then fails every
// call; callers wait for o.done.
func (o *Opener) connFailed(cause error) {
	o.mu.Lock()
	if o.cause == nil && cause != io.EOF {
		// End of stream is not a cause: the exit status says why.
		o.cause = cause
	}
	o.mu.Unlock()
	if o.proc == nil {
		o.endConn() // a server's connection (Dial): no process to wait for
		return
	}
	if cause == io.EOF {
		// The opener closed its end, so it is exiting; give it a moment to
		// finish before we insist.
		select {
		case <-o.done:
			return
		case <-time.After(deathGrace):
		}
	}
	_ = o.proc.Kill()
}

// terminateLocked sets the final error and fails every pending call.
func (o *Opener) terminateLocked(err error) {
	if o.err != nil {
		return
	}
	o.err = err
	// A reader may be parked on the socket with nothing left to come (the
	// opener exited while something it left behind holds its end): wake
	// it, so that it returns the answer it now has.
	o.terminated.Store(true)
	o.conn.setReadDeadline(longAgo)
	fail := func(c *call) {
		if !c.abandoned && !c.done {
			c.err, c.done = err, true
			wakeUp(c)
		}
	}
	for id, c := range o.pending {
		delete(o.pending, id)
		for _, m := range c.members {
			fail(m)
		}
		fail(c)
	}
	for _, m := range o.queue {
		fail(m)
	}
	o.queue = o.queue[:0]
	o.inFlight = 0
	o.flushTimer.Stop()
}

// Close shuts down the connection: the opener answers what it has already
// received, sees end of stream and exits. Close waits for it (killing it if
// it takes longer than a few seconds) and for every call in flight to
// return, then closes the socket. It returns nil if the opener exited with
// status 0, else an *ExitError with the status and the opener's last log
// lines. Calls made after Close return ErrClosed; a second Close returns
// ErrClosed.
func (o *Opener) Close() error {
	err := ErrClosed
	o.closeOnce.Do(func() {
		if o.proc == nil {
			err = o.closeConn() // a server's connection (Dial)
			return
		}
		o.mu.Lock()
		o.closed = true
		o.mu.Unlock()
		_ = o.conn.shutdown(unix.SHUT_WR)
		select {
		case <-o.done:
		case <-time.After(closeTimeout):
			o.abort(errors.New("the opener did not exit within " + closeTimeout.String() + " of Close"))
			<-o.done
		}
		o.mu.Lock()
		for o.active > 0 {
			o.idle.Wait()
		}
		err = o.exitErr
		o.mu.Unlock()
		// No flush starts once o.err is set (before o.done closed); one
		// that started before may still be sending.
		o.flushes.Wait()
		o.conn.close()
		if err == ErrClosed {
			err = nil
		}
	})
	return err
}
