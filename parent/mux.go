//go:build linux

package parent

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/protocol"
)

// mux carries requests to the opener and their replies back over the one
// socket: it numbers requests, matches replies to them by id, hands the
// reading of the socket from caller to caller (the reading role, see
// reader.go) and coalesces single opens under load (coalesce.go). It knows
// nothing of what is at the other end; when the connection fails it tells
// the backend, which ends it.
//
// Each field says what guards it. "reader" means only the goroutine that
// holds the reading role touches it (or Start and Dial, before the Opener is
// shared); the role itself is taken and given up under mu.
type mux struct {
	conn *sock   // set at creation; the socket guards its own uses (sock.go)
	end  backend // set before the mux is shared; told when the connection fails

	// The reader's state: guarded by the reading role.
	rbuf []byte
	roob []byte
	rfds []int

	calls sync.Pool // *call; safe for concurrent use itself

	mu      sync.Mutex
	nextID  uint32           // mu
	pending map[uint32]*call // mu: sent and not yet answered, abandoned ones included
	reading bool             // mu: a caller holds the reading role
	closed  bool             // mu: Close was called
	cause   error            // mu: why the connection failed, if the parent saw it first
	err     error            // mu: set once; every later call fails with it
	exitErr error            // mu: what Close reports; set with err by the backend
	active  int              // mu: calls in flight
	idle    sync.Cond        // L is &mu: signalled when active drops to zero
	flushes sync.WaitGroup   // flushes under way; counted under mu while err is nil

	terminated atomic.Bool   // err is set: a reader woken by the shutdown that follows returns
	inFlight   int           // mu: messages sent and not yet answered
	depth      int           // set at creation: inFlight beyond which opens queue (coalesce.go)
	queue      []*call       // mu: single opens waiting to go out in a group
	holdQueue  bool          // mu: a reader will flush soon; opens queue even with room in the pipeline
	flushTimer *time.Timer   // sends the queue when replies stop coming; Reset and Stop under mu
	done       chan struct{} // closed by the backend once err is set and the end is complete
}

// backend is what lies behind the socket: an opener process (proc.go) or a
// server's connection (conn.go). Its methods are called at most as the mux
// and Close say; each makes the connection end in its own way, and the end
// is complete when it has set mux.err and mux.exitErr (terminateLocked) and
// closed mux.done.
type backend interface {
	// failed is told that the connection can no longer be used; the cause,
	// if the parent saw one, is in mux.cause. eof says the peer closed its
	// end. It may return before the end is complete.
	failed(eof bool)
	// close is Opener.Close, run once: end the connection in order, wait
	// for the calls in flight and close the socket.
	close() error
}

// closeSend begins a backend's close: it marks the connection closed and
// shuts down our sending side, so that the peer answers what it has and
// then ends its side.
func (o *mux) closeSend() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	_ = o.conn.shutdown(unix.SHUT_WR)
}

// closeSocket finishes a backend's close once the end is complete: no
// flush starts once o.err is set, but one that started before may still be
// sending, so it waits for those before it closes the socket. It returns
// err, the end's error, or nil for the ErrClosed of a clean Close.
func (o *mux) closeSocket(err error) error {
	o.flushes.Wait()
	o.conn.close()
	if err == ErrClosed {
		return nil
	}
	return err
}

// call is one request in flight. The caller fills in the request before
// roundTrip and reads the answer after it; in between the call belongs to
// the mux, under mux.mu. A call that is abandoned is never handed back:
// whoever reads its reply closes the descriptors and returns it to the pool.
type call struct {
	id   uint32        // mu: given by registerLocked
	wake chan struct{} // capacity 1: "look at your state again"; sent to under mu
	buf  []byte        // the encoded request; written before roundTrip, its id under mu

	batch int // items sent in a batch request; 0 for a single open; set before roundTrip

	// A single open that may be coalesced keeps its request, so that it
	// can go out in a group instead (see coalesce.go). Set before
	// roundTrip.
	path        string
	flags, mode uint32
	// members are the single opens a group carries (mu).
	members []*call

	// mu: written by the reader, read by the caller once done. The caller
	// owns fds once roundTrip has returned nil; before, the mux does.
	done      bool
	abandoned bool // the caller gave up; the reader closes what arrives
	err       error
	reply     protocol.ErrorReply
	status    []protocol.Status
	fds       []int
	list      []byte // a dir-list reply's payload, copied (readdir.go)
}

// newOpener takes ownership of fd, a connected SOCK_SEQPACKET socket: it
// closes fd if it fails, and otherwise the Opener's socket owns it. The
// caller sets o.end before sharing o.
func newOpener(fd int, log hclog.Logger) (*Opener, error) {
	conn, err := newSock(fd)
	if err != nil {
		return nil, err
	}
	o := &Opener{log: log}
	o.mux = mux{
		conn:    conn,
		rbuf:    make([]byte, protocol.MaxMessage),
		roob:    make([]byte, protocol.OOBSize),
		rfds:    make([]int, 0, protocol.MaxFDs),
		pending: make(map[uint32]*call),
		done:    make(chan struct{}),
		depth:   pipelineDepth(),
	}
	o.idle.L = &o.mu
	o.flushTimer = time.AfterFunc(time.Hour, func() { o.flush(true) })
	o.flushTimer.Stop()
	o.calls.New = func() any {
		return &call{wake: make(chan struct{}, 1), buf: make([]byte, 0, protocol.HeaderSize+8+protocol.MaxPath)}
	}
	return o, nil
}

func (o *mux) getCall() *call {
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

func (o *mux) putCall(c *call) {
	if cap(c.buf) > 64<<10 {
		c.buf = nil
	}
	o.calls.Put(c)
}

// roundTrip sends c's request (c.buf, whose id it fills in) and waits for
// the reply. On a nil return c is done and the caller owns c.fds. On a
// context error the call is abandoned and must not be reused: the reader
// closes whatever arrives for it.
func (o *mux) roundTrip(ctx context.Context, c *call) error {
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
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.err
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

func (o *mux) release() {
	o.mu.Lock()
	o.active--
	if o.active == 0 {
		o.idle.Broadcast()
	}
	o.mu.Unlock()
}

// send sends one message, waiting for room in the opener's queue without
// ignoring ctx.
func (o *mux) send(ctx context.Context, msg []byte) error {
	return o.conn.send(ctx, msg)
}

// registerLocked gives c an id, enters it in pending and counts it in
// flight.
func (o *mux) registerLocked(c *call) {
	for {
		o.nextID++
		if _, busy := o.pending[o.nextID]; o.nextID != 0 && !busy {
			break
		}
	}
	c.id = o.nextID
	o.pending[c.id] = c
	o.inFlight++
	protocol.SetID(c.buf, c.id)
}

// connFailed records why the connection can no longer be used and tells
// the backend, which ends it: every call then fails, and callers wait for
// o.done.
func (o *mux) connFailed(cause error) {
	o.mu.Lock()
	if o.cause == nil && cause != io.EOF {
		// End of stream is not a cause: the exit status says why.
		o.cause = cause
	}
	o.mu.Unlock()
	o.end.failed(cause == io.EOF)
}

// terminateLocked sets the final error and fails every pending call. The
// backend then shuts the socket down (after releasing mu): a reader may be
// blocked on it with nothing left to come (the opener exited while
// something it left behind holds its end), and the shutdown wakes it; the
// terminated flag tells it that every call has its answer.
func (o *mux) terminateLocked(err error) {
	if o.err != nil {
		return
	}
	o.err = err
	o.terminated.Store(true)
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
