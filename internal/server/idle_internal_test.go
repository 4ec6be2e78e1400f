//go:build linux

package server

import (
	"testing"
	"time"
)

// TestIdleWatchSparesRequestsInProgress: a session with a request in
// progress is not idle however long the request takes (an open on a hung
// mount); once it ends, the session is idle and is closed. No timing is
// asserted: the request is held well past the timeout, and the close is
// awaited without a bound on how soon it comes.
func TestIdleWatchSparesRequestsInProgress(t *testing.T) {
	const timeout = 20 * time.Millisecond
	var iw idleWatch
	fired := make(chan struct{})
	iw.Begin()
	stop := iw.watch(timeout, func() { close(fired) })
	defer stop()
	select {
	case <-fired:
		t.Fatal("closed while a request was in progress")
	case <-time.After(20 * timeout):
	}
	iw.End()
	select {
	case <-fired:
	case <-time.After(20 * time.Second):
		t.Fatal("not closed 20s after its last request ended")
	}
}

// TestIdleWatchStop: after stop returns, idle is never called.
func TestIdleWatchStop(t *testing.T) {
	var iw idleWatch
	stop := iw.watch(time.Millisecond, func() { t.Error("idle called after stop") })
	stop()
	time.Sleep(20 * time.Millisecond)
}
