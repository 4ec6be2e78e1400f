//go:build linux

package child_test

import (
	"bytes"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/protocol"
)

// peer is a raw connection to a real opener process: the test plays a
// parent that may be hostile, speaking bytes rather than using package
// parent.
type peer struct {
	t      *testing.T
	sock   int
	cmd    *exec.Cmd
	stderr bytes.Buffer
	buf    []byte
	oob    []byte

	fdsAtStart string // the opener's descriptors at baseline, for checkFDs
}

// spawn starts the test binary as an opener on a fresh socket pair, without
// sending anything.
func spawn(t *testing.T, argFD string) *peer {
	t.Helper()
	return spawnEnv(t, argFD)
}

// spawnEnv is spawn with env added to the opener's environment.
func spawnEnv(t *testing.T, argFD string, env ...string) *peer {
	t.Helper()
	a, b, err := protocol.Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	theirs := os.NewFile(uintptr(b), "opener-end")
	p := &peer{t: t, sock: a, buf: make([]byte, protocol.MaxMessage), oob: make([]byte, protocol.OOBSize)}
	p.cmd = &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{protocol.OpenerArgv0, protocol.OpenerArg, argFD},
		Env:        append([]string{protocol.OpenerEnv(), protocol.LogLevelEnv + "=debug"}, env...),
		ExtraFiles: []*os.File{theirs},
		Stderr:     &p.stderr,
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	t.Cleanup(func() {
		unix.Close(p.sock)
		p.cmd.Process.Kill()
		p.cmd.Wait()
	})
	return p
}

// helloFlags spawns an opener and sends it a hello with flags and rules,
// leaving the reply to the caller.
func helloFlags(t *testing.T, flags uint16, rules ...string) *peer {
	t.Helper()
	p := spawn(t, "3")
	msg, err := protocol.AppendHello(nil, &protocol.Hello{Version: protocol.Version, Flags: flags, Rules: rules})
	testutil.Must(t, err)
	p.send(msg, nil)
	return p
}

// walkFlags returns the hello flags that make the opener walk paths with
// openat2, or with its fallback (HelloNoOpenat2).
func walkFlags(noOpenat2 bool) uint16 {
	if noOpenat2 {
		return protocol.HelloNoOpenat2
	}
	return 0
}

// start spawns an opener and completes the handshake with rules.
func start(t *testing.T, rules ...string) *peer {
	t.Helper()
	p := helloFlags(t, 0, rules...)
	m := p.recv()
	if m.Type != protocol.TypeReady {
		t.Fatalf("first reply: got %s, want ready", m.Type)
	}
	r, err := protocol.DecodeReady(m.Payload)
	if err != nil || int(r.PID) != p.cmd.Process.Pid {
		t.Fatalf("ready: got %+v, %v; want pid %d", r, err, p.cmd.Process.Pid)
	}
	return p
}

func (p *peer) send(msg []byte, fds []int) {
	p.t.Helper()
	if err := protocol.Send(p.sock, msg, fds, 0); err != nil {
		p.t.Fatalf("send: %v", err)
	}
}

// sendRaw sends bytes that need not be a valid message.
func (p *peer) sendRaw(b []byte) {
	p.t.Helper()
	if err := unix.Sendmsg(p.sock, b, nil, nil, unix.MSG_NOSIGNAL); err != nil {
		p.t.Fatalf("sendmsg: %v", err)
	}
}

func (p *peer) recv() protocol.Msg {
	p.t.Helper()
	testutil.Must(p.t, unix.SetsockoptTimeval(p.sock, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 10}))
	m, err := protocol.Recv(p.sock, p.buf, p.oob, nil, 0)
	if err != nil {
		p.t.Fatalf("recv: %v (opener stderr: %s)", err, p.stderr.String())
	}
	return m
}

// expectError receives one reply and checks that it is an error for id with
// reason and errno.
func (p *peer) expectError(id uint32, reason protocol.Reason, errno syscall.Errno) {
	p.t.Helper()
	m := p.recv()
	if m.Type != protocol.TypeError || m.ID != id {
		protocol.CloseFDs(m.FDs)
		p.t.Fatalf("got %s id %d, want error id %d", m.Type, m.ID, id)
	}
	e, err := protocol.DecodeError(m.Payload)
	if err != nil || e.Reason != reason || syscall.Errno(e.Errno) != errno {
		p.t.Fatalf("got %+v (%v), want reason %s errno %v", e, err, reason, errno)
	}
}

// open sends an open request and returns the descriptor or the error reply.
func (p *peer) open(id uint32, path string, flags int) (int, protocol.ErrorReply) {
	p.t.Helper()
	msg, err := protocol.AppendOpenPath(nil, id, uint32(flags), 0, path)
	testutil.Must(p.t, err)
	return p.ask(id, msg)
}

// ask sends msg, a request that answers with one descriptor, and returns
// the descriptor or the error reply.
func (p *peer) ask(id uint32, msg []byte) (int, protocol.ErrorReply) {
	p.t.Helper()
	p.send(msg, nil)
	m := p.recv()
	if m.ID != id {
		protocol.CloseFDs(m.FDs)
		p.t.Fatalf("reply id: got %d, want %d", m.ID, id)
	}
	switch m.Type {
	case protocol.TypeOpened:
		return m.FDs[0], protocol.ErrorReply{}
	case protocol.TypeError:
		e, err := protocol.DecodeError(m.Payload)
		testutil.Must(p.t, err)
		return -1, e
	}
	p.t.Fatalf("reply type %s", m.Type)
	return -1, protocol.ErrorReply{}
}

// exit waits for the opener to exit and returns its status.
func (p *peer) exit() int {
	p.t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.t.Fatalf("opener still running 10s later; stderr: %s", p.stderr.String())
	}
	return p.cmd.ProcessState.ExitCode()
}
