//go:build linux

package child_test

// One client against the others (item 4 of "containment everywhere"): an
// allowed uid opens session after session and keeps them idle after the
// hello. Before the per-uid limit it took all 256 slots of MaxClients and
// root's own client was refused ("too many users") for as long as it held
// them.

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/child"
	"github.com/privsep-go/privsep/internal/hostile"
	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/protocol"
)

const secServerLimits = "server: one client against the others"

// dialAs connects to the server at path as uid (testutil.DialAs) and
// returns a raw peer, closed when the test ends.
func dialAs(t *testing.T, path string, uid uint32) *peer {
	t.Helper()
	fd := testutil.DialAs(t, path, uid)
	p := &peer{t: t, sock: fd, buf: make([]byte, protocol.MaxMessage), oob: make([]byte, protocol.OOBSize)}
	t.Cleanup(p.close)
	return p
}

// limitFixture is a server whose socket any uid can reach, serving a
// world-readable file, with the test's two other uids allowed as well as
// root.
type limitFixture struct {
	s              *testServer
	file           string
	attacker, user uint32
}

func newLimitFixture(t *testing.T, cfg child.ServerConfig) limitFixture {
	t.Helper()
	testutil.NeedRoot(t, "the clients connect with other uids")
	f := limitFixture{file: filepath.Join(t.TempDir(), "f"), attacker: 65533, user: 65532}
	testutil.Must(t, os.WriteFile(f.file, []byte("served\n"), 0o644))
	cfg.AllowUIDs = []uint32{f.attacker, f.user, 0}
	f.s = serveTest(t, cfg, f.file)
	// serveTest's directories are root's, mode 0700: let the other uids
	// reach the socket, which the kernel checks like a file's write
	// permission.
	dir := filepath.Dir(f.s.path)
	testutil.Must(t, os.Chmod(dir, 0o755))
	testutil.Must(t, os.Chmod(filepath.Dir(dir), 0o755))
	testutil.Must(t, os.Chmod(f.s.path, 0o777))
	return f
}

// served checks that p completes the handshake and gets the file.
func (f limitFixture) served(p *peer, id uint32) {
	p.t.Helper()
	p.hello()
	fd, e := p.open(id, f.file, unix.O_RDONLY)
	if fd < 0 {
		p.t.Fatalf("open %s: got %+v, want a descriptor", f.file, e)
	}
	if got := readFD(p.t, fd); got != "served\n" {
		p.t.Errorf("content: got %q", got)
	}
}

// refusedText describes the first message a refused client receives.
func refusedText(p *peer) string {
	p.t.Helper()
	testutil.Must(p.t, unix.SetsockoptTimeval(p.sock, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 10}))
	m, err := protocol.Recv(p.sock, p.buf, p.oob, nil, 0)
	if err != nil {
		return err.Error()
	}
	defer protocol.CloseFDs(m.FDs)
	return hostile.Describe(m)
}

// TestHostileSessionFlood performs the attack: one uid opens its limit of
// sessions, sends its hellos and idles; its next connection is refused
// with the per-uid limit named (reason limit, EUSERS), while another uid
// and root still connect and get a file.
func TestHostileSessionFlood(t *testing.T) {
	const limit = 4
	before, tbl := testutil.FDs(t, os.Getpid()), testutil.FDList(0)
	f := newLimitFixture(t, child.ServerConfig{MaxSessionsPerUID: limit, MaxClients: 3 * limit})
	held := make([]*peer, limit)
	for i := range held {
		held[i] = dialAs(t, f.s.path, f.attacker)
		held[i].hello()
	}
	want := hostile.ReplyText(0, protocol.ReasonLimit, unix.EUSERS) + ", then end of stream"
	for i := range 3 {
		extra := dialAs(t, f.s.path, f.attacker)
		got := refusedText(extra)
		if i == 0 {
			hostile.Row(t, secServerLimits, "a uid's connection beyond its limit of sessions", want, got+", then end of stream")
		}
		if got != hostile.ReplyText(0, protocol.ReasonLimit, unix.EUSERS) {
			t.Fatalf("attacker's session %d: got %s, want %s", limit+i+1, got, want)
		}
		extra.expectEOF()
		extra.close()
	}
	// The others are served as if nothing happened.
	other := dialAs(t, f.s.path, f.user)
	f.served(other, 1)
	root := dialRaw(t, f.s.path)
	f.served(root, 1)
	hostile.Row(t, secServerLimits, "another uid and root while one uid holds its limit", "both served", "both served")
	other.close()
	root.close()

	ls := f.s.log.Lines(t, "as many sessions as one uid may")
	if len(ls) != 3 || ls[0]["@level"] != "warn" || ls[0]["uid"] != float64(f.attacker) || ls[0]["max_sessions_per_uid"] != float64(limit) {
		t.Errorf("log: got %v, want 3 warnings naming uid %d and the limit %d; log:\n%s", ls, f.attacker, limit, f.s.log)
	}
	for _, p := range held {
		p.close()
	}
	if err := f.s.stop(t); err != nil {
		t.Errorf("Serve: %v", err)
	}
	if after := testutil.FDs(t, os.Getpid()); after != before {
		t.Errorf("descriptors: %d before the server, %d after: %v then %v", before, after, tbl, testutil.FDList(0))
	}
}

// TestHostileIdleSessions: the attacker's idle sessions are closed after
// the idle timeout (logged at info with the uid), which frees its slots;
// the server holds no more descriptors than before.
func TestHostileIdleSessions(t *testing.T) {
	const limit = 3
	before, tbl := testutil.FDs(t, os.Getpid()), testutil.FDList(0)
	f := newLimitFixture(t, child.ServerConfig{MaxSessionsPerUID: limit, IdleTimeout: 200 * time.Millisecond})
	idle := make([]*peer, limit)
	for i := range idle {
		idle[i] = dialAs(t, f.s.path, f.attacker)
		idle[i].hello()
	}
	for _, p := range idle {
		p.expectEOF() // within expectEOF's 10 s, whenever the timeout comes
		p.close()
	}
	got := "closed"
	hostile.Row(t, secServerLimits, "sessions idle after their hello, past the idle timeout", "closed, slots freed", got+", slots freed")
	deadline := time.Now().Add(20 * time.Second)
	for len(f.s.log.Lines(t, "client disconnected")) < limit && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	ls := f.s.log.Lines(t, "closing an idle session")
	if len(ls) != limit {
		t.Fatalf("log: got %d idle closes, want %d; log:\n%s", len(ls), limit, f.s.log)
	}
	for _, l := range ls {
		if l["@level"] != "info" || l["uid"] != float64(f.attacker) {
			t.Errorf("idle close logged as %v, want info with uid %d", l, f.attacker)
		}
	}
	// The slots are free again.
	p := dialAs(t, f.s.path, f.attacker)
	f.served(p, 1)
	p.close()
	if err := f.s.stop(t); err != nil {
		t.Errorf("Serve: %v", err)
	}
	if after := testutil.FDs(t, os.Getpid()); after != before {
		t.Errorf("descriptors: %d before the server, %d after: %v then %v", before, after, tbl, testutil.FDList(0))
	}
}
