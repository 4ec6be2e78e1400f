//go:build linux

package parent

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// procBackend is the backend of an opener process: one Start re-exec'd, or
// one Inherited found as this process's child. The connection ends when the
// process does: waitProcess, which waits for it, fails every call with its
// exit status, so a failure the mux sees is made an end by killing the
// process.
type procBackend struct {
	o            *Opener     // the Opener this is the backend of; set at creation
	proc         *os.Process // the opener; set at creation
	closeTimeout time.Duration
}

// startProc makes p the backend of o and starts the goroutine that waits
// for the process with wait, which must return its state (or nil if it
// cannot be had). logsDone is closed when the opener's stderr has been read
// to the end.
func startProc(o *Opener, proc *os.Process, closeTimeout time.Duration, wait func() *os.ProcessState, logsDone <-chan struct{}) *procBackend {
	p := &procBackend{o: o, proc: proc, closeTimeout: closeTimeout}
	o.end = p
	go p.waitProcess(wait, logsDone)
	return p
}

// failed stops the opener: its exit ends the connection.
func (p *procBackend) failed(eof bool) {
	if eof {
		// The opener closed its end, so it is exiting; give it a moment to
		// finish before we insist.
		select {
		case <-p.o.done:
			return
		case <-time.After(deathGrace):
		}
	}
	_ = p.proc.Kill()
}

// close asks the opener to exit by shutting down our sending side, waits
// for it (killing it after closeTimeout) and for the calls in flight, and
// closes the socket.
func (p *procBackend) close() error {
	o := p.o
	o.closeSend()
	select {
	case <-o.done:
	case <-time.After(p.closeTimeout):
		p.abort(errors.New("the opener did not exit within " + p.closeTimeout.String() + " of Close"))
		<-o.done
	}
	o.mu.Lock()
	for o.active > 0 {
		o.idle.Wait()
	}
	err := o.exitErr
	o.mu.Unlock()
	return o.closeSocket(err)
}

// waitProcess waits for the opener to exit and then fails every call with
// the result, or ErrClosed after a clean Close.
func (p *procBackend) waitProcess(wait func() *os.ProcessState, logsDone <-chan struct{}) {
	o := p.o
	ps := wait()
	// The opener's stderr ends with it; give the log reader a moment to
	// drain the last lines, which the error report wants.
	select {
	case <-logsDone:
	case <-time.After(logGrace):
	}
	o.mu.Lock()
	cause := o.cause
	clean := o.closed && ps != nil && ps.Success() && cause == nil
	var err error = ErrClosed
	if !clean {
		if cause == nil && ps != nil && ps.Success() {
			cause = errors.New("exited before Close was called")
		}
		err = &ExitError{ProcessState: ps, Cause: cause, Log: o.tail.get()}
	}
	o.terminateLocked(err)
	o.exitErr = err
	o.mu.Unlock()
	close(o.done)
	// A send waiting for room (a call's, or a flush's) would wait for
	// ever if something the opener left behind holds its end: shutting
	// ours down wakes it with EPIPE, so that Close, which waits for them,
	// ends.
	_ = o.conn.shutdown(unix.SHUT_RDWR)
}

// abort records why the connection failed and stops the opener.
func (p *procBackend) abort(cause error) {
	p.o.mu.Lock()
	if p.o.cause == nil {
		p.o.cause = cause
	}
	p.o.mu.Unlock()
	_ = p.proc.Kill()
}
