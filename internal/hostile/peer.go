//go:build linux

package hostile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/protocol"
)

// Timeout bounds every wait of the harness: a reply, an exit.
const Timeout = 10 * time.Second

// Peer is a raw connection to a real opener process: the test plays a parent
// that may be hostile, speaking bytes rather than using package parent. The
// opener is the test binary re-executed with the opener's argv and
// environment, so the test package's TestMain must call child.Init.
type Peer struct {
	t      testing.TB
	Sock   int // the parent's end of the socket pair
	Cmd    *exec.Cmd
	stderr testutil.LogBuffer
	buf    []byte
	oob    []byte

	waitOnce sync.Once
	waitErr  error
}

// Spawn starts an opener on a fresh socket pair without sending anything.
// logLevel is the opener's PRIVSEP_LOG_LEVEL ("" for its default).
func Spawn(t testing.TB, logLevel string) *Peer {
	t.Helper()
	a, b, err := protocol.Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	theirs := os.NewFile(uintptr(b), "opener-end")
	p := &Peer{t: t, Sock: a, buf: make([]byte, protocol.MaxMessage), oob: make([]byte, protocol.OOBSize)}
	env := []string{protocol.OpenerEnv()}
	if logLevel != "" {
		env = append(env, protocol.LogLevelEnv+"="+logLevel)
	}
	p.Cmd = &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{protocol.OpenerArgv0, protocol.OpenerArg, "3"},
		Env:        env,
		ExtraFiles: []*os.File{theirs},
		Stderr:     &p.stderr,
	}
	if err := p.Cmd.Start(); err != nil {
		theirs.Close()
		unix.Close(a)
		t.Fatal(err)
	}
	theirs.Close()
	t.Cleanup(func() {
		unix.Close(p.Sock)
		p.Cmd.Process.Kill()
		p.wait()
	})
	return p
}

// Start spawns an opener and completes the handshake with rules.
func Start(t testing.TB, rules ...string) *Peer {
	t.Helper()
	p := Spawn(t, "info")
	msg, err := protocol.AppendHello(nil, &protocol.Hello{Version: protocol.Version, Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	p.MustSend(msg, nil)
	m, err := p.Recv(Timeout)
	if err != nil {
		t.Fatalf("waiting for ready: %v; opener stderr: %s", err, p.Stderr())
	}
	r, err := protocol.DecodeReady(m.Payload)
	if m.Type != protocol.TypeReady || err != nil || int(r.PID) != p.PID() {
		t.Fatalf("first reply: got %s, %+v, %v; want ready with pid %d", Describe(m), r, err, p.PID())
	}
	return p
}

// PID returns the opener's process id.
func (p *Peer) PID() int { return p.Cmd.Process.Pid }

// Stderr returns what the opener has logged so far.
func (p *Peer) Stderr() string { return p.stderr.String() }

// Send sends a whole message with fds attached as SCM_RIGHTS, blocking.
func (p *Peer) Send(msg []byte, fds []int) error {
	return protocol.Send(p.Sock, msg, fds, 0)
}

// MustSend is Send that fails the test on error.
func (p *Peer) MustSend(msg []byte, fds []int) {
	p.t.Helper()
	if err := p.Send(msg, fds); err != nil {
		p.t.Fatalf("send: %v", err)
	}
}

// SendRaw sends data, which need not be a message (it may be empty), with
// oob as the control data (nil for none), in one sendmsg(2). Unlike
// unix.Sendmsg it adds no dummy byte to an empty message with control data.
func (p *Peer) SendRaw(data, oob []byte, flags int) error {
	return SendRaw(p.Sock, data, oob, flags)
}

// MustSendRaw is SendRaw that fails the test on error.
func (p *Peer) MustSendRaw(data, oob []byte) {
	p.t.Helper()
	if err := p.SendRaw(data, oob, 0); err != nil {
		p.t.Fatalf("sendmsg: %v", err)
	}
}

// ErrTimeout is returned by Recv when nothing arrived in time.
var ErrTimeout = errors.New("hostile: no message before the timeout")

// Recv waits up to timeout for one message. It returns io.EOF at end of
// stream (the opener exited or closed its end) and ErrTimeout when nothing
// came. The caller owns the descriptors of the message.
func (p *Peer) Recv(timeout time.Duration) (protocol.Msg, error) {
	pfd := []unix.PollFd{{Fd: int32(p.Sock), Events: unix.POLLIN}}
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left < 0 {
			left = 0
		}
		n, err := unix.Poll(pfd, int(left/time.Millisecond)+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return protocol.Msg{}, err
		}
		if n == 0 {
			if time.Now().After(deadline) {
				return protocol.Msg{}, ErrTimeout
			}
			continue
		}
		m, err := protocol.Recv(p.Sock, p.buf, p.oob, nil, unix.MSG_DONTWAIT)
		if err == unix.EAGAIN {
			continue
		}
		return m, err
	}
}

// Reply receives one reply within Timeout and fails the test if there is
// none.
func (p *Peer) Reply() protocol.Msg {
	p.t.Helper()
	m, err := p.Recv(Timeout)
	if err != nil {
		p.t.Fatalf("waiting for a reply: %v; opener stderr: %s", err, p.Stderr())
	}
	return m
}

// CheckError checks that m is an error reply for id with reason and errno,
// closes whatever m carried, and returns a description of m.
func CheckError(m protocol.Msg, id uint32, reason protocol.Reason, errno syscall.Errno) (string, error) {
	protocol.CloseFDs(m.FDs)
	got := Describe(m)
	if want := ReplyText(id, reason, errno); got != want {
		return got, fmt.Errorf("got %s, want %s", got, want)
	}
	return got, nil
}

// Open sends an open request for path and returns the descriptor (-1 on an
// error reply) and the error reply.
func (p *Peer) Open(id uint32, path string, flags int) (int, protocol.ErrorReply) {
	p.t.Helper()
	msg, err := protocol.AppendOpenPath(nil, id, uint32(flags), 0, path)
	if err != nil {
		p.t.Fatal(err)
	}
	p.MustSend(msg, nil)
	m := p.Reply()
	if m.ID != id {
		protocol.CloseFDs(m.FDs)
		p.t.Fatalf("reply to open %d: got %s", id, Describe(m))
	}
	switch m.Type {
	case protocol.TypeOpened:
		return m.FDs[0], protocol.ErrorReply{}
	case protocol.TypeError:
		e, err := protocol.DecodeError(m.Payload)
		if err != nil {
			p.t.Fatal(err)
		}
		return -1, e
	}
	protocol.CloseFDs(m.FDs)
	p.t.Fatalf("reply to open %d: got %s", id, Describe(m))
	return -1, protocol.ErrorReply{}
}

// Probe opens path (which must be allowed and exist) and closes the
// descriptor: the opener still serves.
func (p *Peer) Probe(id uint32, path string) error {
	p.t.Helper()
	fd, e := p.Open(id, path, 0)
	if fd < 0 {
		return fmt.Errorf("probe open of %s: %s", path, ReplyText(id, e.Reason, syscall.Errno(e.Errno)))
	}
	unix.Close(fd)
	return nil
}

func (p *Peer) wait() {
	p.waitOnce.Do(func() { p.waitErr = p.Cmd.Wait() })
}

// Exit waits up to timeout for the opener to exit and describes how:
// "exit 3", "signal killed". It returns the exit status (-1 for a signal).
func (p *Peer) Exit(timeout time.Duration) (int, string, error) {
	done := make(chan struct{})
	go func() { p.wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		return -1, "still running", fmt.Errorf("opener still running %v later; stderr: %s", timeout, p.Stderr())
	}
	ps := p.Cmd.ProcessState
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, "signal " + ws.Signal().String(), nil
	}
	return ps.ExitCode(), fmt.Sprintf("exit %d", ps.ExitCode()), nil
}

// Finish reads what the opener sends until end of stream, then waits for it
// to exit. It returns the exit status, a description such as "error id 0:
// protocol, EPROTO (71), then exit 3", and the messages (descriptors
// closed, payloads copied).
func (p *Peer) Finish() (int, string, []protocol.Msg, error) {
	var msgs []protocol.Msg
	var desc []string
	for len(msgs) < 1000 {
		m, err := p.Recv(Timeout)
		if err == io.EOF {
			break
		}
		if err != nil {
			desc = append(desc, "receive: "+err.Error())
			break
		}
		protocol.CloseFDs(m.FDs)
		m.FDs = nil
		m.Payload = append([]byte(nil), m.Payload...)
		msgs = append(msgs, m)
		desc = append(desc, Describe(m))
	}
	code, how, err := p.Exit(Timeout)
	if len(desc) == 0 {
		return code, "no reply, " + how, msgs, err
	}
	return code, strings.Join(desc, ", ") + ", then " + how, msgs, err
}

// FDs counts the opener's descriptors once the count settles (want < 0) or
// reaches want.
func (p *Peer) FDs(want int) int {
	p.t.Helper()
	n, err := testutil.SettledFDs(p.PID(), want)
	if err != nil {
		p.t.Fatal(err)
	}
	return n
}
