//go:build linux

package parent

import (
	"context"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/protocol"
)

// Coalescing. A single Open is sent at once while fewer than o.depth
// messages await their replies, so a lone caller never waits for company.
// Beyond that, opens queue up, and each time a reply comes back the reader
// sends everything queued as one open-batch message (a group), whose one
// reply answers them all. Under load, then, many callers share one round
// trip and one wake-up of each side, and the cost per open approaches a
// batch's.
//
// Between a reply and that flush, the reader lets the callers it woke run
// (reader.go), and holdQueue makes the opens they ask for next queue even
// though the pipeline has room: they leave in the same group, rather than
// the first of them alone and the rest in a second, smaller one.
//
// The pipeline is two messages deep where the process may use more than
// one CPU and has more than one scheduler slot, so that the opener can work on one while we hand out the
// other's descriptors, and one deep on a single CPU, where a second
// message could never be worked on at the same time and would only split
// the callers into two smaller groups (16 callers on one CPU: groups of 15
// instead of 5 on average).
//
// If replies stop coming (an open stalls in the opener), a timer sends the
// queue anyway after flushDelay, so a stalled request does not hold up the
// ones behind it.
const flushDelay = time.Millisecond

// pipelineDepth is how many messages may await replies before opens queue.
// One scheduler slot (GOMAXPROCS=1, read when the Opener is made) counts
// as one CPU: its callers run one at a time whatever the machine has, and
// the reader must yield after every reply for them to form groups.
func pipelineDepth() int {
	if runtime.NumCPU() == 1 || runtime.GOMAXPROCS(0) == 1 {
		return 1
	}
	return 2
}

// enqueueLocked queues single open c to be sent in a group, and reports
// whether it did: it does when the pipeline is full, or a reader is about
// to flush (holdQueue).
func (o *mux) enqueueLocked(c *call) bool {
	if c.path == "" || (o.inFlight < o.depth && !o.holdQueue) {
		return false
	}
	o.queue = append(o.queue, c)
	if len(o.queue) == 1 {
		o.flushTimer.Reset(flushDelay)
	}
	return true
}

// takeGroupLocked takes queued opens for one message, if the pipeline has
// room or force is set, registers it and returns the call to send: a group
// of several, or a single open on its own. It returns nil when there is
// nothing to send.
func (o *mux) takeGroupLocked(force bool) *call {
	o.holdQueue = false
	if len(o.queue) == 0 || (!force && o.inFlight >= o.depth) || o.err != nil {
		return nil
	}
	g := o.getCall()
	size := protocol.BatchSize(0, 0)
	n := 0
	for _, m := range o.queue {
		if m.abandoned {
			n++ // never sent: just drop it
			continue
		}
		var fits bool
		if size, fits = batchAdd(len(g.members), size, len(m.path)); !fits {
			break
		}
		g.members = append(g.members, m)
		n++
	}
	o.queue = o.queue[:copy(o.queue, o.queue[n:])]
	if len(o.queue) == 0 {
		o.flushTimer.Stop()
	}
	switch len(g.members) {
	case 0:
		o.putCall(g)
		return nil
	case 1:
		c := g.members[0]
		o.putCall(g)
		o.registerLocked(c)
		return c
	}
	var err error
	g.buf, err = protocol.AppendOpenBatchFunc(g.buf[:0], 0, len(g.members), func(i int) (uint32, uint32, string) {
		m := g.members[i]
		return m.flags, m.mode, m.path
	})
	if err != nil { // cannot happen: every path was checked when queued
		for _, m := range g.members {
			m.err, m.done = err, true
			wakeUp(m)
		}
		o.putCall(g)
		return nil
	}
	g.batch = len(g.members)
	o.registerLocked(g)
	return g
}

// flush sends queued opens if there is room (or force), outside o.mu.
//
// A flush runs on the reader's goroutine or the timer's, not as a call of
// its own, so it is counted in o.flushes for Close to wait for. It is
// counted under o.mu, and only when takeGroupLocked found o.err unset:
// Close waits only after o.err is set, so no count can start after the
// wait has begun.
func (o *mux) flush(force bool) {
	o.mu.Lock()
	g := o.takeGroupLocked(force)
	var msg []byte
	if g != nil {
		// Once o.mu is released the reply may come, and the call go back
		// to the pool and be reused, before this goroutine is done with
		// it: send a copy. It costs one allocation per group, shared by
		// every open in it.
		msg = append(msg, g.buf...)
		o.flushes.Add(1)
	}
	o.mu.Unlock()
	if g == nil {
		return
	}
	err := o.conn.trySend(msg)
	if err == unix.EAGAIN {
		// The opener's queue is full. Waiting here could deadlock the
		// reader, which may be the one flushing; wait elsewhere, still
		// counted.
		go func() {
			defer o.flushes.Done()
			if err := o.send(context.Background(), msg); err != nil {
				o.sendFailed(err)
			}
		}()
		return
	}
	o.flushes.Done()
	if err != nil {
		o.sendFailed(err)
	}
}

// sendFailed handles a send that failed for a message already registered:
// the connection is unusable, so it fails everything.
func (o *mux) sendFailed(err error) {
	go func() {
		o.connFailed(normalizeSendErr(err))
	}()
}

// dispatchGroupLocked hands a group's reply out to its members. It owns
// fds: it gives each OK member its descriptor or closes it.
func (o *mux) dispatchGroupLocked(g *call, typ protocol.Type, fds []int) {
	next := 0
	for i, m := range g.members {
		var st protocol.Status
		if typ == protocol.TypeError {
			st = g.reply
		} else {
			st = g.status[i]
		}
		fd := -1
		if st.Reason == protocol.ReasonOK {
			fd, next = fds[next], next+1
		}
		if m.abandoned {
			if fd >= 0 {
				unix.Close(fd)
			}
			o.putCall(m)
			continue
		}
		if fd >= 0 {
			m.fds = append(m.fds[:0], fd)
		} else {
			m.reply = st
		}
		m.done = true
		wakeUp(m)
	}
	g.members = g.members[:0]
	o.putCall(g)
}
