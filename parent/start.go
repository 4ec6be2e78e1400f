//go:build linux

package parent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/protocol"
)

const (
	// logGrace bounds how long the parent reads the opener's stderr after
	// the opener exited.
	logGrace = 200 * time.Millisecond
	// deathGrace bounds how long a reader that saw the connection end waits
	// for the opener to exit before it kills it.
	deathGrace = 2 * time.Second
)

// Start starts the opener: it re-executes the program as the child, sends
// the policy and waits until the child is ready. ctx bounds the start only;
// the opener lives until Close or until it dies.
//
// The process that calls Start should still hold the privileges the opener
// needs: the opener inherits them. Drop them after Start returns.
func Start(ctx context.Context, cfg Config) (*Opener, error) {
	if os.Getenv(protocol.OpenerEnvKey) == protocol.OpenerEnvValue {
		return nil, errors.New("privsep: this process was started as an opener but its program did not call child.Init at the top of main; refusing to start another")
	}
	hello, err := startHello(cfg)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	timeout := cfg.StartTimeout
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	closeTimeout := cfg.CloseTimeout
	if closeTimeout <= 0 {
		closeTimeout = DefaultCloseTimeout
	}
	o, p, err := spawn(cfg, log, closeTimeout)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	sctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if err := o.handshake(sctx, hello, p.proc.Pid); err != nil {
		p.abort(fmt.Errorf("start: %w", err))
		<-o.done
		o.conn.close()
		// Report the status and the opener's last words, which usually say
		// what went wrong, with the handshake's own error as the cause.
		ret := &ExitError{Cause: err}
		if ee, ok := o.exitErr.(*ExitError); ok {
			ret.ProcessState, ret.Log = ee.ProcessState, ee.Log
		}
		var hr *helloRefusal
		if errors.As(err, &hr) && hr.e.Reason == protocol.ReasonSystem {
			return nil, fmt.Errorf("privsep: starting the opener: %w", missingRuleDir(cfg, syscall.Errno(hr.e.Errno), ret))
		}
		return nil, fmt.Errorf("privsep: starting the opener: %w", ret)
	}
	log.Debug("opener ready", "pid", o.pid, "openat2", o.openat2)
	return o, nil
}

// missingRuleDir builds the error for an opener that refused the hello with
// ReasonSystem: a tree rule's directory did not resolve. The opener's log
// names the rule; to name it in a typed error too, the parent looks for the
// first non-optional tree rule whose directory it cannot stat. This is a
// diagnosis only: what the opener resolved (from its pinned root, never
// through a magic link) decided.
func missingRuleDir(cfg Config, errno syscall.Errno, cause error) *RuleDirError {
	e := &RuleDirError{Errno: errno, Err: cause}
	pol := cfg.Policy
	if pol == nil {
		var err error
		if pol, err = (PolicySource{Rules: cfg.Rules, Listen: cfg.Listen}).Policy(); err != nil {
			return e
		}
	}
	for _, r := range pol.Rules() {
		if !r.Tree || r.Optional {
			continue
		}
		if fi, err := os.Stat(r.Path); err != nil || !fi.IsDir() {
			e.Rule, e.Dir = r.String(), r.Path
			return e
		}
	}
	return e
}

// startHello compiles cfg's policy into the hello message that carries it.
func startHello(cfg Config) ([]byte, error) {
	pol := cfg.Policy
	switch {
	case pol != nil && (len(cfg.Rules) > 0 || len(cfg.Listen) > 0):
		return nil, errors.New("privsep: Config has both Rules and Policy (or Listen and Policy); merge them into one policy")
	case pol == nil:
		var err error
		if pol, err = (PolicySource{Rules: cfg.Rules, Listen: cfg.Listen}).Policy(); err != nil {
			return nil, fmt.Errorf("privsep: policy: %w", err)
		}
	}
	var flags uint16
	if cfg.DisableOpenat2 {
		flags |= protocol.HelloNoOpenat2
	}
	if cfg.Broker {
		flags |= protocol.HelloBroker
		if cfg.BrokerOnly {
			flags |= protocol.HelloBrokerOnly
		}
	}
	hello, err := protocol.AppendHello(nil, &protocol.Hello{Version: protocol.Version, Flags: flags, Rules: pol.Strings()})
	if err != nil {
		return nil, fmt.Errorf("privsep: policy too large for one hello message: %w", err)
	}
	return hello, nil
}

// spawn starts the opener process with one end of a new socketpair as its
// descriptor 3 and returns the Opener on the other end, its backend waiting
// for the process. The child gets its own copies of its end and of the
// write end of the log pipe; spawn closes the parent's. The Opener owns the
// parent's end of the socket; a goroutine owns the log pipe's read end.
func spawn(cfg Config, log hclog.Logger, closeTimeout time.Duration) (*Opener, *procBackend, error) {
	exe := cfg.Executable
	if exe == "" {
		exe = "/proc/self/exe"
	}
	mine, theirs, err := protocol.Socketpair()
	if err != nil {
		return nil, nil, fmt.Errorf("privsep: %w", err)
	}
	childEnd := os.NewFile(uintptr(theirs), "privsep-opener-socket") // owns theirs
	logR, logW := (*os.File)(nil), cfg.ChildStderr
	if logW == nil {
		if logR, logW, err = os.Pipe(); err != nil {
			childEnd.Close()
			unix.Close(mine)
			return nil, nil, fmt.Errorf("privsep: %w", err)
		}
	}
	cmd := &exec.Cmd{
		Path: exe,
		// ExtraFiles[0] becomes descriptor 3 in the child.
		Args:       []string{protocol.OpenerArgv0, protocol.OpenerArg, strconv.Itoa(3)},
		Env:        []string{protocol.OpenerEnv(), protocol.LogLevelEnv + "=" + childLevel(logLevel(log, cfg.SlogHandler), cfg.ChildStderr != nil)},
		ExtraFiles: []*os.File{childEnd},
		Stderr:     logW,
		// Its own process group: a Ctrl-C at the terminal stops the
		// parent, and the opener then ends at end of stream, in order.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	err = cmd.Start()
	// The child has its copies now; ours must go, or the parent would never
	// see end of stream when the child dies.
	childEnd.Close()
	if logR != nil {
		logW.Close()
	}
	if err != nil {
		if logR != nil {
			logR.Close()
		}
		unix.Close(mine)
		return nil, nil, fmt.Errorf("privsep: starting the opener %s: %w", exe, err)
	}
	o, err := newOpener(mine, log) // owns mine from here, closing it on failure
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		if logR != nil {
			logR.Close()
		}
		return nil, nil, fmt.Errorf("privsep: %w", err)
	}
	return o, startProc(o, cmd.Process, closeTimeout, processWaiter(cmd, logR), forwardChildLogs(o, logR, log, cfg.SlogHandler)), nil
}

// forwardChildLogs starts re-emitting the opener's log lines from logR
// through log, if there is a pipe (nil: the opener writes to
// Config.ChildStderr), and returns a channel closed when logR has been read
// to the end. The goroutine owns logR and closes it.
func forwardChildLogs(o *Opener, logR *os.File, log hclog.Logger, h slog.Handler) <-chan struct{} {
	logsDone := make(chan struct{})
	if logR == nil {
		close(logsDone)
		return logsDone
	}
	go func() {
		forwardLogs(logR, log.Named("child"), h, &o.tail)
		logR.Close()
		close(logsDone)
	}()
	return logsDone
}

// processWaiter returns the wait function of the process backend for cmd.
func processWaiter(cmd *exec.Cmd, logR *os.File) func() *os.ProcessState {
	return func() *os.ProcessState {
		_ = cmd.Wait() // the state is in cmd.ProcessState whatever the error
		if logR != nil {
			// The opener is gone; if something it left behind still holds
			// its stderr, stop reading after the grace period rather than
			// keep a descriptor and a goroutine for as long as that lives.
			// Closing it twice (here and in forwardChildLogs) is harmless:
			// os.File guards its descriptor.
			time.AfterFunc(logGrace, func() { logR.Close() })
		}
		return cmd.ProcessState
	}
}

// logLevel is the most verbose level log or h (if not nil) wants.
func logLevel(log hclog.Logger, h slog.Handler) hclog.Level {
	l := log.GetLevel()
	if h == nil {
		return l
	}
	hl := slogMinLevel(h)
	if l == hclog.NoLevel || l == hclog.Off || hl < l {
		return hl
	}
	return l
}

// childLevel is the level the opener logs at: the parent logger's, but,
// when the parent reads the opener's log (not direct, to ChildStderr),
// never quieter than warn, so that an opener that fails has left its
// reasons for ExitError even when the parent logs nothing; those lines are
// filtered by the parent's own level when re-emitted. Lines the opener
// writes straight to ChildStderr are seen as they are, so there the
// parent's level is the opener's.
func childLevel(l hclog.Level, direct bool) string {
	if l == hclog.NoLevel {
		l = hclog.Warn
	}
	if !direct && l > hclog.Warn {
		l = hclog.Warn
	}
	return l.String()
}

// handshake sends hello and waits for ready.
func (o *Opener) handshake(ctx context.Context, hello []byte, pid int) error {
	errGone := errors.New("the opener closed the connection before it was ready (does the program call child.Init at the top of main?)")
	if err := o.send(ctx, hello); err != nil {
		if errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) {
			return errGone
		}
		return fmt.Errorf("sending hello: %w", err)
	}
	return o.awaitReady(ctx, pid, errGone)
}

// awaitReady waits for the ready message that answers the hello. pid, if
// not 0, is the pid it must carry (Dial cannot know it); errGone is the
// error for an end of stream. An error with id 0 instead of ready is
// returned as a *helloRefusal.
func (o *Opener) awaitReady(ctx context.Context, pid int, errGone error) error {
	m, err := o.recvFirst(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no ready message before the deadline (does the program call child.Init at the top of main?): %w", err)
	}
	if err == io.EOF {
		return errGone
	}
	if err != nil {
		return err
	}
	protocol.CloseFDs(m.FDs)
	if m.Type == protocol.TypeError && m.ID == 0 {
		e, derr := protocol.DecodeError(m.Payload)
		if derr == nil {
			return &helloRefusal{e}
		}
	}
	if m.Type != protocol.TypeReady || m.ID != 0 || m.NFD != 0 {
		return fmt.Errorf("protocol: first reply is %s id %d with %d descriptors, want ready id 0", m.Type, m.ID, m.NFD)
	}
	r, err := protocol.DecodeReady(m.Payload)
	if err != nil {
		return err
	}
	if pid != 0 && int(r.PID) != pid {
		return fmt.Errorf("protocol: ready says pid %d, the opener is pid %d", r.PID, pid)
	}
	o.pid = int(r.PID)
	o.openat2 = r.Features&protocol.FeatureOpenat2 != 0
	return nil
}

// helloRefusal is an error with id 0 where ready was expected: the opener
// (or a server) refused the hello.
type helloRefusal struct{ e protocol.ErrorReply }

func (r *helloRefusal) Error() string {
	return fmt.Sprintf("the opener refused the hello: %s (%v)", r.e.Reason, syscall.Errno(r.e.Errno))
}
