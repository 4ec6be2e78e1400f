//go:build linux

package child_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/child"
	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/policy"
	"github.com/privsep-go/privsep/protocol"
)

// testServer is a child.Serve running in this process.
type testServer struct {
	path   string
	log    *testutil.LogBuffer
	cancel context.CancelFunc
	done   chan error
}

// serveTest runs child.Serve on a fresh socket with cfg (Policies defaults
// to rules, for everyone) and stops it when the test ends.
func serveTest(t *testing.T, cfg child.ServerConfig, rules ...string) *testServer {
	t.Helper()
	if cfg.Policies == nil {
		pol, err := policy.Parse(rules)
		testutil.Must(t, err)
		cfg.Policies = policy.Unscoped(pol)
	}
	s := &testServer{path: filepath.Join(t.TempDir(), "s.sock"), log: &testutil.LogBuffer{}, done: make(chan error, 1)}
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: s.log, Level: hclog.Debug, JSONFormat: true})
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: s.path, Net: "unixpacket"})
	testutil.Must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- child.Serve(ctx, ln, cfg) }()
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop cancels the server and waits for Serve to return.
func (s *testServer) stop(t *testing.T) error {
	t.Helper()
	s.cancel()
	select {
	case err, ok := <-s.done:
		if ok {
			close(s.done)
			return err
		}
		return nil
	case <-time.After(20 * time.Second):
		t.Fatalf("Serve still running 20s after cancel; log:\n%s", s.log)
	}
	return nil
}

// dialRaw connects to the server and returns a raw peer, without a hello.
func dialRaw(t *testing.T, path string) *peer {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	testutil.Must(t, err)
	p := &peer{t: t, sock: fd, buf: make([]byte, protocol.MaxMessage), oob: make([]byte, protocol.OOBSize)}
	t.Cleanup(p.close)
	testutil.Must(t, unix.Connect(fd, &unix.SockaddrUnix{Name: path}))
	return p
}

// close closes a peer from dialRaw; it may be called more than once.
func (p *peer) close() {
	if p.sock >= 0 {
		unix.Close(p.sock)
		p.sock = -1
	}
}

// hello sends a hello with no rules and checks the ready answer.
func (p *peer) hello() {
	p.t.Helper()
	msg, err := protocol.AppendHello(nil, &protocol.Hello{Version: protocol.Version})
	testutil.Must(p.t, err)
	p.send(msg, nil)
	m := p.recv()
	if m.Type != protocol.TypeReady {
		p.t.Fatalf("answer to hello: got %s, want ready", m.Type)
	}
	r, err := protocol.DecodeReady(m.Payload)
	if err != nil || int(r.PID) != os.Getpid() || r.Version != protocol.Version {
		p.t.Fatalf("ready: got %+v, %v; want the server's pid %d", r, err, os.Getpid())
	}
}

// expectEOF checks that the server ends the connection.
func (p *peer) expectEOF() {
	p.t.Helper()
	testutil.Must(p.t, unix.SetsockoptTimeval(p.sock, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 10}))
	m, err := protocol.Recv(p.sock, p.buf, p.oob, nil, 0)
	if err != io.EOF {
		protocol.CloseFDs(m.FDs)
		p.t.Fatalf("after the refusal: got %s id %d, %v; want end of stream", m.Type, m.ID, err)
	}
}

// readFD reads what a received descriptor holds, and closes it.
func readFD(t *testing.T, fd int) string {
	t.Helper()
	f := os.NewFile(uintptr(fd), "received")
	defer f.Close()
	b, err := io.ReadAll(f)
	testutil.Must(t, err)
	return string(b)
}

func TestServerServes(t *testing.T) {
	file := testutil.TempFile(t, "served\n")
	s := serveTest(t, child.ServerConfig{}, file)

	p := dialRaw(t, s.path)
	p.hello()
	fd, e := p.open(1, file, unix.O_RDONLY)
	if fd < 0 {
		t.Fatalf("open %s: got %+v, want a descriptor", file, e)
	}
	if got := readFD(t, fd); got != "served\n" {
		t.Errorf("content: got %q", got)
	}
	if _, e := p.open(2, "/etc/passwd", unix.O_RDONLY); e.Reason != protocol.ReasonDenied {
		t.Errorf("open /etc/passwd: got %+v, want denied", e)
	}
	// A second hello is refused as in any session.
	msg, _ := protocol.AppendHello(nil, &protocol.Hello{Version: protocol.Version})
	p.send(msg, nil)
	p.expectError(0, protocol.ReasonProtocol, unix.EPROTO)
	testutil.Must(t, unix.Shutdown(p.sock, unix.SHUT_WR))
	p.expectEOF()

	// The log names the peer on every line about it.
	deadline := time.Now().Add(20 * time.Second)
	for len(s.log.Lines(t, "client disconnected")) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, msg := range []string{"client connected", "denied", "client disconnected"} {
		ls := s.log.Lines(t, msg)
		if len(ls) != 1 {
			t.Fatalf("log: got %d %q lines, want 1; log:\n%s", len(ls), msg, s.log)
		}
		l := ls[0]
		if l["uid"] != float64(os.Geteuid()) || l["gid"] != float64(os.Getegid()) || l["pid"] != float64(os.Getpid()) {
			t.Errorf("log line %q: got uid %v gid %v pid %v, want %d %d %d", msg, l["uid"], l["gid"], l["pid"], os.Geteuid(), os.Getegid(), os.Getpid())
		}
	}
	if l := s.log.Lines(t, "client connected")[0]; l["pidfd"] != true {
		t.Logf("no SO_PEERPIDFD on this kernel (pidfd=%v)", l["pidfd"])
	}
}

func TestServerRefusesUnlisted(t *testing.T) {
	uid, gid := uint32(os.Geteuid()), uint32(os.Getegid())
	for _, tc := range []struct {
		name       string
		uids, gids []uint32
		served     bool
	}{
		{"default: own uid", nil, nil, true},
		{"uid listed", []uint32{12345, uid}, nil, true},
		{"gid listed", []uint32{12345}, []uint32{gid}, true},
		{"neither listed", []uint32{uid + 1}, []uint32{gid + 1}, false},
		{"only a gid listed, not ours", nil, []uint32{gid + 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := serveTest(t, child.ServerConfig{AllowUIDs: tc.uids, AllowGIDs: tc.gids}, "/etc/hostname")
			p := dialRaw(t, s.path)
			if tc.served {
				p.hello()
				return
			}
			// The refusal comes first, before we send anything.
			p.expectError(0, protocol.ReasonDenied, unix.EACCES)
			p.expectEOF()
			ls := s.log.Lines(t, "refused connection")
			if len(ls) != 1 || ls[0]["@level"] != "warn" || ls[0]["uid"] != float64(uid) || ls[0]["gid"] != float64(gid) || ls[0]["pid"] != float64(os.Getpid()) {
				t.Errorf("log: got %v, want one warning with uid %d gid %d pid %d; log:\n%s", ls, uid, gid, os.Getpid(), s.log)
			}
		})
	}
	t.Run("refused after sending its hello", func(t *testing.T) {
		// The client sends before reading: its hello (and anything after
		// it) must not turn the refusal into ECONNRESET.
		s := serveTest(t, child.ServerConfig{AllowUIDs: []uint32{uid + 1}}, "/etc/hostname")
		for range 20 {
			p := dialRaw(t, s.path)
			msg, _ := protocol.AppendHello(nil, &protocol.Hello{Version: protocol.Version})
			for range 3 {
				if err := protocol.Send(p.sock, msg, nil, 0); err != nil && !errors.Is(err, unix.EPIPE) {
					t.Fatalf("send: %v", err)
				}
			}
			p.expectError(0, protocol.ReasonDenied, unix.EACCES)
			p.expectEOF()
		}
	})
}

func TestServerRefusesPolicyInHello(t *testing.T) {
	s := serveTest(t, child.ServerConfig{}, "/etc/hostname")
	for _, h := range []protocol.Hello{
		{Version: protocol.Version, Rules: []string{"/"}},
		{Version: protocol.Version, Flags: protocol.HelloNoOpenat2},
	} {
		p := dialRaw(t, s.path)
		msg, err := protocol.AppendHello(nil, &h)
		testutil.Must(t, err)
		p.send(msg, nil)
		p.expectError(0, protocol.ReasonProtocol, unix.EPROTO)
		p.expectEOF()
	}
	// Something else first.
	p := dialRaw(t, s.path)
	msg, _ := protocol.AppendOpenPath(nil, 1, 0, 0, "/etc/hostname")
	p.send(msg, nil)
	p.expectError(0, protocol.ReasonProtocol, unix.EPROTO)
	p.expectEOF()
	// A version the server does not speak.
	p = dialRaw(t, s.path)
	msg, _ = protocol.AppendHello(nil, &protocol.Hello{Version: protocol.Version})
	msg[16] = 2
	p.send(msg, nil)
	p.expectError(0, protocol.ReasonProtocol, unix.EPROTONOSUPPORT)
	p.expectEOF()
	if n := len(s.log.Lines(t, "refused the handshake")); n != 4 {
		t.Errorf("log: got %d refused handshakes, want 4; log:\n%s", n, s.log)
	}
}

func TestServerHelloTimeout(t *testing.T) {
	s := serveTest(t, child.ServerConfig{HelloTimeout: 200 * time.Millisecond}, "/etc/hostname")
	p := dialRaw(t, s.path)
	start := time.Now()
	p.expectError(0, protocol.ReasonProtocol, unix.ETIMEDOUT)
	p.expectEOF()
	if d := time.Since(start); d < 150*time.Millisecond || d > 10*time.Second {
		t.Errorf("refused after %v, want about 200ms", d)
	}
}

func TestServerMaxClients(t *testing.T) {
	s := serveTest(t, child.ServerConfig{MaxClients: 2}, "/etc/hostname")
	a, b := dialRaw(t, s.path), dialRaw(t, s.path)
	a.hello()
	b.hello()
	c := dialRaw(t, s.path)
	c.expectError(0, protocol.ReasonSystem, unix.EUSERS)
	c.expectEOF()
	if ls := s.log.Lines(t, "too many clients"); len(ls) != 1 {
		t.Errorf("log: got %d lines about too many clients, want 1", len(ls))
	}
	// When one leaves, a slot is free again.
	testutil.Must(t, unix.Shutdown(a.sock, unix.SHUT_WR))
	a.expectEOF()
	deadline := time.Now().Add(20 * time.Second)
	for {
		d := dialRaw(t, s.path)
		msg, _ := protocol.AppendHello(nil, &protocol.Hello{Version: protocol.Version})
		if err := protocol.Send(d.sock, msg, nil, 0); err == nil {
			if m := d.recv(); m.Type == protocol.TypeReady {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no slot free 20s after a client left")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServerMisbehavingClients: clients that send nothing, send garbage,
// leave mid-request or never read their replies do not disturb the others,
// and the server holds no more descriptors afterwards than before.
func TestServerMisbehavingClients(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	testutil.Must(t, os.WriteFile(file, []byte("good\n"), 0o644))
	before := testutil.FDs(t, os.Getpid())
	// Every client here is root: room for all of them at once, so that the
	// per-uid limit (tested elsewhere) does not refuse a good client while
	// the misbehaving ones are still being ended.
	s := serveTest(t, child.ServerConfig{HelloTimeout: time.Second, SendTimeout: 300 * time.Millisecond, MaxSessionsPerUID: 64}, dir+"/")

	var bad sync.WaitGroup
	// Connects and sends nothing.
	silent := dialRaw(t, s.path)
	// Sends garbage instead of a hello, and after one.
	garbage := dialRaw(t, s.path)
	testutil.Must(t, unix.Sendmsg(garbage.sock, []byte("GET / HTTP/1.0\r\n\r\n"), nil, nil, unix.MSG_NOSIGNAL))
	garbage2 := dialRaw(t, s.path)
	garbage2.hello()
	testutil.Must(t, unix.Sendmsg(garbage2.sock, []byte("\x00\x01garbage"), nil, nil, unix.MSG_NOSIGNAL))
	// Sends requests and leaves without reading the replies.
	for range 5 {
		q := dialRaw(t, s.path)
		q.hello()
		for i := range 20 {
			msg, _ := protocol.AppendOpenPath(nil, uint32(i+1), 0, 0, file)
			q.send(msg, nil)
		}
		q.close()
	}
	// Never reads its replies, and keeps sending.
	stuck := dialRaw(t, s.path)
	stuck.hello()
	bad.Add(1)
	go func() {
		defer bad.Done()
		msg, _ := protocol.AppendOpenPath(nil, 1, 0, 0, file)
		for i := 0; ; i++ {
			putID(msg, uint32(i+1))
			if err := protocol.Send(stuck.sock, msg, nil, unix.MSG_DONTWAIT); err != nil {
				if err == unix.EAGAIN {
					time.Sleep(time.Millisecond)
					continue
				}
				return // the server ended the session: EPIPE
			}
		}
	}()

	// Meanwhile the good clients are served.
	var good sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		good.Add(1)
		p := dialRaw(t, s.path)
		go func() {
			defer good.Done()
			defer p.close()
			if err := goodClient(p, file, 200); err != nil {
				errs <- err
			}
		}()
	}
	good.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	bad.Wait() // the stuck client's session was ended
	silent.expectError(0, protocol.ReasonProtocol, unix.ETIMEDOUT)
	garbage.expectError(0, protocol.ReasonProtocol, unix.EPROTO)
	garbage2.expectError(0, protocol.ReasonProtocol, unix.EPROTO)
	if n := len(s.log.Lines(t, "does not read its replies")); n != 1 {
		t.Errorf("log: got %d lines about the stuck client, want 1", n)
	}
	if err := s.stop(t); err != nil {
		t.Errorf("Serve: %v", err)
	}
	// The stuck client's queue still holds descriptors we sent it.
	drain(stuck)
	for _, p := range []*peer{silent, garbage, garbage2, stuck} {
		p.close()
	}
	after := testutil.FDs(t, os.Getpid())
	for deadline := time.Now().Add(5 * time.Second); after != before && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond) // a descriptor may be on its way out
		after = testutil.FDs(t, os.Getpid())
	}
	if after != before {
		t.Errorf("descriptors: %d before, %d after: %v", before, after, testutil.FDList(0))
	}
}

// goodClient says hello and opens and reads file n times through p,
// allowing a loaded machine a minute for each reply.
func goodClient(p *peer, file string, n int) error {
	if err := unix.SetsockoptTimeval(p.sock, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 60}); err != nil {
		return err
	}
	hello, _ := protocol.AppendHello(nil, &protocol.Hello{Version: protocol.Version})
	if err := protocol.Send(p.sock, hello, nil, 0); err != nil {
		return err
	}
	m, err := protocol.Recv(p.sock, p.buf, p.oob, nil, 0)
	if err != nil || m.Type != protocol.TypeReady {
		return fmt.Errorf("hello: got %s, %v; want ready", m.Type, err)
	}
	for i := range n {
		msg, _ := protocol.AppendOpenPath(nil, uint32(i+1), 0, 0, file)
		if err := protocol.Send(p.sock, msg, nil, 0); err != nil {
			return err
		}
		m, err := protocol.Recv(p.sock, p.buf, p.oob, nil, 0)
		if err != nil {
			return fmt.Errorf("open %d: %w", i, err)
		}
		if m.Type != protocol.TypeOpened || m.ID != uint32(i+1) {
			protocol.CloseFDs(m.FDs)
			return fmt.Errorf("open %d: got %s id %d", i, m.Type, m.ID)
		}
		f := os.NewFile(uintptr(m.FDs[0]), file)
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil || string(b) != "good\n" {
			return fmt.Errorf("read %d: %q %v", i, b, err)
		}
	}
	return nil
}

// drain reads and closes everything left for p.
func drain(p *peer) {
	for {
		m, err := protocol.Recv(p.sock, p.buf, p.oob, nil, unix.MSG_DONTWAIT)
		if err == unix.EAGAIN || err == io.EOF {
			return
		}
		protocol.CloseFDs(m.FDs)
	}
}

func putID(msg []byte, id uint32) {
	msg[4], msg[5], msg[6], msg[7] = byte(id), byte(id>>8), byte(id>>16), byte(id>>24)
}

// TestServerShutdown: once its context is done, Serve answers what it
// received, ends every session and returns nil.
func TestServerShutdown(t *testing.T) {
	file := testutil.TempFile(t, "x")
	s := serveTest(t, child.ServerConfig{}, file)
	idle := dialRaw(t, s.path)
	idle.hello()
	busy := dialRaw(t, s.path)
	busy.hello()
	for i := range 50 {
		msg, _ := protocol.AppendOpenPath(nil, uint32(i+1), 0, 0, file)
		busy.send(msg, nil)
	}
	start := time.Now()
	if err := s.stop(t); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if d := time.Since(start); d > child.DefaultShutdownTimeout+time.Second {
		t.Errorf("Serve took %v to stop", d)
	}
	idle.expectEOF()
	// Every request sent before the shutdown is answered, then end of stream.
	answered := 0
	for {
		testutil.Must(t, unix.SetsockoptTimeval(busy.sock, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 10}))
		m, err := protocol.Recv(busy.sock, busy.buf, busy.oob, nil, 0)
		if err == io.EOF {
			break
		}
		testutil.Must(t, err)
		protocol.CloseFDs(m.FDs)
		answered++
	}
	if answered != 50 {
		t.Errorf("answered %d of 50 requests", answered)
	}
	// New connections are refused: the listener is closed.
	fd, _ := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: s.path}); err == nil {
		t.Error("connect after shutdown: got nil, want an error")
	}
}

func TestServerScopedPolicies(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"all", "mine", "other"} {
		testutil.Must(t, os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644))
	}
	data := "r:" + dir + "/all\n[uid " + strconv.Itoa(os.Geteuid()) + "]\nr:" + dir + "/mine\n[uid " + strconv.Itoa(os.Geteuid()+1) + "]\nr:" + dir + "/other\n"
	sc, err := policy.ParseScopedFile("p", []byte(data), nil)
	testutil.Must(t, err)
	pols, err := sc.Compile()
	testutil.Must(t, err)
	s := serveTest(t, child.ServerConfig{Policies: pols})
	p := dialRaw(t, s.path)
	p.hello()
	for i, tc := range []struct {
		name string
		ok   bool
	}{{"all", true}, {"mine", true}, {"other", false}} {
		fd, e := p.open(uint32(i+1), filepath.Join(dir, tc.name), unix.O_RDONLY)
		if (fd >= 0) != tc.ok {
			t.Errorf("open %s: got fd %d %+v, want allowed %v", tc.name, fd, e, tc.ok)
		}
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

func TestServeRefusesStreamListener(t *testing.T) {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(t.TempDir(), "s"), Net: "unix"})
	testutil.Must(t, err)
	pol, _ := policy.Parse(nil)
	err = child.Serve(context.Background(), ln, child.ServerConfig{Policies: policy.Unscoped(pol)})
	if err == nil || !strings.Contains(err.Error(), "SOCK_SEQPACKET") {
		t.Errorf("Serve on a stream socket: got %v, want an error", err)
	}
	if err := child.Serve(context.Background(), ln, child.ServerConfig{}); err == nil {
		t.Error("Serve without a policy: got nil, want an error")
	}
}

func TestListenSocket(t *testing.T) {
	setUmask(t, 0o077) // the file must get exactly the mode asked for anyway
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	gid := 12345
	if os.Geteuid() != 0 {
		gid = os.Getegid() // a group we are in
	}
	s, err := child.ListenSocket(path, 0o660, gid)
	testutil.Must(t, err)
	var st unix.Stat_t
	testutil.Must(t, unix.Lstat(path, &st))
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK || st.Mode&0o7777 != 0o660 || int(st.Gid) != gid {
		t.Errorf("socket file: got mode %#o gid %d, want a socket of mode 0660, gid %d", st.Mode, st.Gid, gid)
	}
	// It is a SOCK_SEQPACKET listener, bound under its real address
	// although it was bound in a private directory (without
	// CAP_SYS_CHROOT, under the path relative to "/": see makeSocket).
	dialRaw(t, path).close()
	wantAddr := path
	if os.Geteuid() != 0 {
		wantAddr = strings.TrimPrefix(path, "/")
	}
	if got := s.Addr().String(); got != wantAddr {
		t.Errorf("listener address: got %q, want %q", got, wantAddr)
	}

	// A live socket is not replaced.
	if _, err := child.ListenSocket(path, 0o600, -1); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("ListenSocket on a live socket: got %v, want \"in use\"", err)
	}
	testutil.Must(t, s.Close())
	// Now it is stale (Close does not remove a file it did not create):
	// replaced, with the new mode.
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("after Close: %v", err)
	}
	s2, err := child.ListenSocket(path, 0o666, -1)
	if err != nil {
		t.Fatalf("ListenSocket on a stale socket: %v", err)
	}
	testutil.Must(t, unix.Lstat(path, &st))
	if st.Mode&0o7777 != 0o666 {
		t.Errorf("replaced socket: got mode %#o, want 0666 whatever the umask", st.Mode&0o7777)
	}
	// Remove removes only the file it made.
	testutil.Must(t, s2.Remove())
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Remove: got %v, want the file gone", err)
	}
	testutil.Must(t, os.WriteFile(path, []byte("not mine"), 0o644))
	testutil.Must(t, s2.Remove())
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("Remove removed a file it did not make: %v", err)
	}
	s2.Close()

	// Anything but a socket is refused and left alone.
	for name, mk := range map[string]func(string) error{
		"regular file": func(p string) error { return os.WriteFile(p, []byte("x"), 0o644) },
		"directory":    func(p string) error { return os.Mkdir(p, 0o755) },
		"symlink":      func(p string) error { return os.Symlink(path, p) },
		"fifo":         func(p string) error { return unix.Mkfifo(p, 0o644) },
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		testutil.Must(t, mk(p))
		_, err := child.ListenSocket(p, 0o660, -1)
		if err == nil || !strings.Contains(err.Error(), "not a socket") {
			t.Errorf("%s: got %v, want \"not a socket\"", name, err)
		}
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s: removed: %v", name, err)
		}
	}
	// A stream socket that is listening counts as in use.
	sp := filepath.Join(dir, "stream.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sp, Net: "unix"})
	testutil.Must(t, err)
	defer ln.Close()
	if _, err := child.ListenSocket(sp, 0o660, -1); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a listening stream socket: got %v, want \"in use\"", err)
	}
	if _, err := child.ListenSocket(filepath.Join(dir, "x"), 0o4660, -1); err == nil {
		t.Error("mode with setuid: got nil error")
	}
	noPrivateDirs(t, dir)
}

// TestServeRefusesOwnProcessDir: a server's rule directory that resolves
// into a process's own /proc directory (here through a symlink, which
// package policy cannot see) makes Serve fail at start, naming it.
func TestServeRefusesOwnProcessDir(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "me")
	testutil.Must(t, os.Symlink("/proc/self", link))
	pol, err := policy.Parse([]string{link + "/"})
	testutil.Must(t, err)
	fds := testutil.FDs(t, os.Getpid())
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: filepath.Join(dir, "s.sock"), Net: "unixpacket"})
	testutil.Must(t, err)
	err = child.Serve(context.Background(), ln, child.ServerConfig{Policies: policy.Unscoped(pol)})
	var own *child.OwnProcessError
	if !errors.As(err, &own) || own.Dir != link || !strings.Contains(err.Error(), "own directory") {
		t.Errorf("Serve with %s/: got %v, want an *OwnProcessError naming it", link, err)
	}
	if got := testutil.FDs(t, os.Getpid()); got != fds {
		t.Errorf("descriptors: %d before the listener and Serve (which closes it), %d after", fds, got)
	}
}
