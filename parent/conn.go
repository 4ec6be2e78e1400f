//go:build linux

package parent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/protocol"
)

// Dial connects to a running server (privsep serve, or a program that calls
// child.Serve) on the unix socket at path, and returns the same kind of
// Opener as Start, under the policy the server gives this process's uid and
// primary gid. There is no process to wait for: Close shuts the connection
// down, waits for the calls in flight and closes the socket; PID is the
// server's pid. If the server ends the connection, every pending and later
// call fails with an *ExitError whose ProcessState is nil and whose Cause
// says so.
//
// A server that refuses this process (its uid and gid are not allowed, this
// uid has as many sessions as the server allows one uid, or it has too many
// clients) makes Dial return a *ConnRefusedError; a refusal of who we are
// matches ErrDenied. ctx bounds the connection and the
// handshake; without a deadline, DefaultStartTimeout applies.
func Dial(ctx context.Context, path string) (*Opener, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultStartTimeout)
		defer cancel()
	}
	fail := func(err error) (*Opener, error) {
		return nil, fmt.Errorf("privsep: dial %s: %w", path, err)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unixpacket", path)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Err != nil {
			err = oe.Err // "dial unixpacket PATH:" says nothing we do not
		}
		if errors.Is(err, syscall.EACCES) {
			// The kernel's gate, before the server's own.
			err = fmt.Errorf("%w (the socket file's mode and group do not let this process connect)", err)
		}
		return fail(err)
	}
	// The Opener keeps its socket out of the runtime's poller (sock.go),
	// where the net.Conn has put this one: take a duplicate and let the
	// net.Conn go.
	rc, err := nc.(*net.UnixConn).SyscallConn()
	if err != nil {
		nc.Close()
		return fail(err)
	}
	fd, dupErr := -1, error(nil)
	if err := rc.Control(func(s uintptr) { fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		dupErr = err
	}
	nc.Close() // closes nc's descriptor; fd, the duplicate, is ours
	if dupErr != nil {
		return fail(dupErr)
	}
	// newOpener owns fd from here, closing it if it fails.
	o, err := newOpener(fd, hclog.NewNullLogger())
	if err != nil {
		return fail(err)
	}
	o.end = &connBackend{m: &o.mux, closeTimeout: DefaultCloseTimeout}
	hello, err := protocol.AppendHello(nil, &protocol.Hello{Version: protocol.Version})
	if err != nil {
		o.conn.close()
		return fail(err)
	}
	if err := o.dialHandshake(ctx, hello); err != nil {
		o.conn.close()
		return fail(err)
	}
	return o, nil
}

// dialHandshake sends the hello, which carries no policy: a server's policy
// is its own. A server that refuses the connection says so before it reads
// anything, and may have closed by the time the hello goes out; the reason
// is waiting to be read all the same.
func (o *Opener) dialHandshake(ctx context.Context, hello []byte) error {
	errGone := errors.New("the server closed the connection before it was ready")
	if err := o.send(ctx, hello); err != nil && !errors.Is(err, unix.EPIPE) && !errors.Is(err, unix.ECONNRESET) {
		return fmt.Errorf("sending hello: %w", err)
	}
	err := o.awaitReady(ctx, 0, errGone)
	var hr *helloRefusal
	switch {
	case err == nil:
		return nil
	case errors.As(err, &hr):
		return &ConnRefusedError{Reason: hr.e.Reason, Errno: syscall.Errno(hr.e.Errno), UID: uint32(os.Geteuid())}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fmt.Errorf("no ready message from the server: %w", err)
	}
	return err
}

func (e *ConnRefusedError) Error() string {
	s := "the server refused this connection: "
	switch {
	case e.Reason == protocol.ReasonDenied:
		s += "this user and group may not connect"
	case e.Reason == protocol.ReasonLimit && e.Errno == unix.EUSERS:
		s += "uid " + strconv.FormatUint(uint64(e.UID), 10) + " has as many sessions as the per-uid limit allows (privsep serve --max-sessions-per-uid)"
	case e.Reason == protocol.ReasonSystem && e.Errno == unix.EUSERS:
		s += "it is serving as many clients as it may (privsep serve --max-clients)"
	case e.Reason == protocol.ReasonProtocol && e.Errno == unix.ETIMEDOUT:
		s += "no hello in time"
	case e.Reason == protocol.ReasonProtocol:
		s += "protocol violation"
	default:
		s += e.Reason.String()
	}
	if e.Errno != 0 {
		s += " (" + e.Errno.Error() + ")"
	}
	return s
}

// connBackend is the backend of a server's connection (Dial): there is no
// process to wait for, so the connection ends when either side ends it.
type connBackend struct {
	m            *mux // set at creation
	closeTimeout time.Duration
}

// failed ends the connection at once.
func (b *connBackend) failed(bool) { b.endConn() }

// endConn ends a connection that has no process behind it (Dial): every
// pending and later call fails, with ErrClosed when Close asked for the end
// and nothing went wrong, else with an *ExitError without a ProcessState
// whose Cause says why; o.done closes. A blocked reader is woken by shutting
// the socket down. Only the first call does anything.
func (b *connBackend) endConn() {
	o := b.m
	o.mu.Lock()
	if o.err != nil {
		o.mu.Unlock()
		return
	}
	var err error = ErrClosed
	if !o.closed || o.cause != nil {
		cause := o.cause
		if cause == nil {
			cause = errors.New("the server closed the connection")
		}
		err = &ExitError{Cause: cause}
	}
	o.terminateLocked(err)
	o.exitErr = err
	o.mu.Unlock()
	close(o.done)
	// After Close this does nothing: it never touches a descriptor number
	// that was reused.
	_ = o.conn.shutdown(unix.SHUT_RDWR)
}

// close is Close for a connection from Dial: shut down our sending side
// (the server answers what it has, then closes), wait for the calls in
// flight to get their replies (at most closeTimeout, then cut the
// connection), end it and close the socket. It returns nil, or the
// *ExitError of a connection that had failed before.
func (b *connBackend) close() error {
	o := b.m
	o.closeSend()
	idle := make(chan struct{})
	go func() {
		o.mu.Lock()
		for o.active > 0 {
			o.idle.Wait()
		}
		o.mu.Unlock()
		close(idle)
	}()
	select {
	case <-idle:
	case <-time.After(b.closeTimeout):
		o.mu.Lock()
		if o.cause == nil {
			o.cause = errors.New("calls still unanswered " + b.closeTimeout.String() + " after Close")
		}
		o.mu.Unlock()
		b.endConn()
		<-idle
	}
	b.endConn()
	o.mu.Lock()
	err := o.exitErr
	o.mu.Unlock()
	return o.closeSocket(err)
}
