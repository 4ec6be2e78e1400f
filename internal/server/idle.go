//go:build linux

package server

import (
	"sync"
	"sync/atomic"
	"time"
)

// idleWatch tells an idle session from a busy one without reading a clock
// per request: workers count requests as they begin and end, and a timer
// that ticks four times per timeout closes the session once it has seen
// no request begin or end, and none in progress, for more than a timeout.
type idleWatch struct {
	busy atomic.Int32  // requests being served
	seq  atomic.Uint64 // bumped as each request begins and ends
}

// Begin and End make an idleWatch the session's opener.Activity.
func (iw *idleWatch) Begin() { iw.busy.Add(1); iw.seq.Add(1) }
func (iw *idleWatch) End()   { iw.seq.Add(1); iw.busy.Add(-1) }

// watch starts the timer; idle is called once, from the timer, when the
// session has been idle for timeout. The returned function stops it.
func (iw *idleWatch) watch(timeout time.Duration, idle func()) (stop func()) {
	const ticks = 4
	period := max(timeout/ticks, time.Millisecond)
	var (
		mu      sync.Mutex
		stopped bool
		last    = iw.seq.Load()
		quiet   int // ticks in a row with nothing begun or ended
		t       *time.Timer
	)
	mu.Lock() // the callback reads t under mu
	defer mu.Unlock()
	t = time.AfterFunc(period, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		if seq := iw.seq.Load(); seq != last || iw.busy.Load() > 0 {
			last, quiet = seq, 0
		} else if quiet++; quiet >= ticks {
			// The last change came at or before the tick that saw it,
			// ticks periods ago: idle for at least timeout, and less
			// than timeout + period.
			stopped = true
			idle()
			return
		}
		t.Reset(period)
	})
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
	}
}
