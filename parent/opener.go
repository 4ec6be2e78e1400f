//go:build linux

package parent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"sync"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/policy"
	"github.com/privsep-go/privsep/protocol"
)

// Opener is the parent's handle on an opener: a child process it started
// (Start) or inherited (Inherited), or a server's connection (Dial). It is
// safe for concurrent use by many goroutines; replies are matched to
// requests by id and may arrive in any order.
//
// The Opener is three parts. The mux (mux.go, reader.go, coalesce.go) owns
// the socket and carries requests over it: ids, the reading role,
// coalescing. The backend (proc.go or conn.go) is what lies behind the
// socket and decides how the connection ends. What is left here is the API.
type Opener struct {
	mux // its backend, mux.end, is set before the Opener is returned

	// Set before the Opener is returned and read-only after.
	log     hclog.Logger
	pid     int
	openat2 bool

	tail      logTail // the opener's last log lines; guarded inside
	closeOnce sync.Once
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
		return nil, pathRefusal("open", path, err)
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
	// The File takes ownership of the descriptor; the caller closes it.
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

// pathRefusal reports a path the parent refuses before asking (op is
// "open" or "readdir"): the opener would refuse it the same way.
func pathRefusal(op, path string, err error) error {
	re := &RefusedError{Reason: protocol.ReasonBadRequest, Errno: syscall.EINVAL, Why: err.Error()}
	var r policy.Refusal
	if errors.As(err, &r) {
		re.Errno, re.Why = r.Errno, r.Why
	}
	return &fs.PathError{Op: op, Path: path, Err: re}
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

// Close shuts down the connection. For an opener process (Start,
// Inherited) the opener answers what it has already received, sees end of
// stream and exits; Close waits for it (killing it if it takes longer than
// Config.CloseTimeout) and for every call in flight to return, then closes
// the socket. It returns nil if the opener exited with status 0, else an
// *ExitError with the status and the opener's last log lines. For a
// connection from Dial see Dial. Calls made after Close return ErrClosed; a
// second Close returns ErrClosed.
func (o *Opener) Close() error {
	err := ErrClosed
	o.closeOnce.Do(func() { err = o.end.close() })
	return err
}
