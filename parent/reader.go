//go:build linux

package parent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"syscall"

	"github.com/privsep-go/privsep/protocol"
)

// The reading role.
//
// No goroutine of its own reads the socket. A caller waiting for its reply
// that finds nobody reading takes the role (mux.reading, set and cleared
// under mu), reads, hands each reply to its call (dispatchLocked) and, once
// its own has come or its ctx has ended, gives the role up and wakes one
// caller still waiting (promoteLocked), which takes it over. A lone caller
// thus sends and receives on its own goroutine with no hand-off at all.
//
// The invariant: at most one goroutine holds the role; and whenever it is
// free while a call that is neither done nor abandoned waits, that call has
// a wake-up coming or buffered. Every path that leaves the role free with
// such calls waiting (the reader returning, a waiter giving up on its ctx, a
// caller whose send failed) calls promoteLocked before it releases mu, and a
// waiter decides to sleep only after seeing, under mu, that it is not done
// and the role is held.
//
// The races it tolerates, and why each is harmless:
//
//   - Spare wake-ups. c.wake has room for one and means only "look at your
//     state again": a caller woken for nothing looks and sleeps again, and
//     getCall drains one left from a call's previous life.
//   - A wake-up to a caller that is leaving. A waiter whose ctx ends may
//     have swallowed the wake-up meant to make it the reader; it marks
//     itself abandoned and, if the role is free, passes it on. A reader
//     that gives up marks its call abandoned before promoting, so that the
//     role does not come back to it.
//   - Two would-be readers. The one woken and a newly arrived caller may
//     both look for the role; the first to take mu gets it, the other sees
//     it held and sleeps.
//   - Replies to abandoned calls. They stay in pending; whoever reads takes
//     their replies and closes the descriptors (dispatchLocked). If nobody
//     calls again, they wait in the socket until Close closes it, which
//     closes them.
//   - The end of the connection while the reader is blocked. terminateLocked
//     answers every call and sets the terminated flag, and the backend then
//     shuts the socket down, which wakes the reader; it returns with the
//     answer it now has.
//
// A reader whose ctx can end waits in ppoll and looks at ctx every
// cancelPoll (sock.recv); one whose ctx cannot blocks in recvmsg. Neither
// leaves anything behind for the next reader.
//
// The reader never waits to send: a flush it makes after a reply uses a
// non-blocking send and hands a full queue to a goroutine (coalesce.go), or
// it could wait on an opener that is itself waiting for us to read.

// recv receives one message, waiting until one arrives, ctx ends or the
// connection ends (see sock.recv). The caller holds the reading role (or
// is Start, before anyone else can read).
func (o *mux) recv(ctx context.Context) (protocol.Msg, error) {
	if o.terminated.Load() {
		return protocol.Msg{}, io.EOF
	}
	m, err := o.conn.recv(ctx, o.rbuf, o.roob, o.rfds)
	if o.terminated.Load() {
		// The backend's shutdown woke us, or a reply came after the end:
		// every call has its answer already.
		if err == nil {
			protocol.CloseFDs(m.FDs)
		}
		return protocol.Msg{}, io.EOF
	}
	return m, err
}

// recvFirst is recv for the handshake: the ready (or the refusal) that
// arrived is returned even when the opener has ended since, so that an
// opener which answers and exits at once makes Start succeed with an
// Opener whose Err says how it ended, rather than fail as if it had never
// answered. Only when nothing arrived does the end count.
func (o *mux) recvFirst(ctx context.Context) (protocol.Msg, error) {
	m, err := o.conn.recv(ctx, o.rbuf, o.roob, o.rfds)
	if err != nil && o.terminated.Load() {
		return protocol.Msg{}, io.EOF
	}
	return m, err
}

// wait waits for c's reply, reading the socket itself when nobody else is.
func (o *mux) wait(ctx context.Context, c *call) error {
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
func (o *mux) promoteLocked() {
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
func (o *mux) read(ctx context.Context, c *call) error {
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
		// Set before the reply wakes anyone: on another P a woken caller
		// may ask again at once. The flush below clears it.
		o.holdQueue = true
		answered, err := o.dispatchLocked(m)
		done := c.done
		o.mu.Unlock()
		// Did the reply wake callers other than us? With one CPU or one
		// scheduler slot (depth 1) we yield after our own too (below).
		yield := answered != c || o.depth == 1
		if err != nil {
			o.connFailed(err)
			<-o.done
			return nil
		}
		if yield {
			// Let the callers the reply woke run before we send or block:
			// each takes its file and most ask again at once, and while
			// holdQueue is set they queue, so that the flush below sends
			// them all in one message (coalesce.go). Without the yield,
			// too, our next receive could block in the kernel with our P,
			// and with one P they would wait for one of sysmon's ticks to
			// run at all. On one CPU the yield comes even after our own
			// reply: other goroutines may be ready to ask, and a caller that
			// always finds the pipeline empty and sends alone would keep
			// them from ever forming a group. With more CPUs they run on
			// another P, and a yield with nobody woken would only wake an
			// idle thread to find nothing (a futex call and a context
			// switch per open).
			runtime.Gosched()
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
func (o *mux) failOneLocked(h protocol.Header, err error) bool {
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

// dispatchLocked hands one well-framed reply to its call, which it
// returns (a group's call for a group: its members were woken). It owns
// m.FDs: it gives them to the call or closes them. A non-nil error is a
// protocol violation by the opener, fatal for the connection.
func (o *mux) dispatchLocked(m protocol.Msg) (*call, error) {
	c, ok := o.pending[m.ID]
	if m.ID == 0 || !ok {
		protocol.CloseFDs(m.FDs)
		if m.ID == 0 && m.Type == protocol.TypeError {
			// The opener's last word before it exits on a violation.
			if e, err := protocol.DecodeError(m.Payload); err == nil {
				return nil, fmt.Errorf("the opener reported: %s (%v)", e.Reason, syscall.Errno(e.Errno))
			}
		}
		return nil, fmt.Errorf("protocol: %s reply for unknown request id %d", m.Type, m.ID)
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
		return nil, err
	}
	delete(o.pending, m.ID)
	o.inFlight--
	if len(c.members) > 0 {
		o.dispatchGroupLocked(c, m.Type, m.FDs)
		return c, nil
	}
	if c.abandoned {
		protocol.CloseFDs(m.FDs)
		o.putCall(c)
		return c, nil
	}
	c.fds = append(c.fds[:0], m.FDs...)
	c.done = true
	wakeUp(c)
	return c, nil
}
