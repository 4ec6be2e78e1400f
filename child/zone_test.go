//go:build linux

package child_test

import (
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/protocol"
)

// TestOpenerOpensNoZoneFile: the opener's log lines used to carry local
// time, so the time package loaded the zone on the first line, opening $TZ
// (or /etc/localtime) by path from "/", as root, usually just after the
// handshake, and for a moment without close-on-exec. The descriptor showed
// up in counts taken right after ready. TestNoPathCalls cannot see this
// (the open is in the standard library), so this test watches the file the
// zone would come from: $TZ names a file watched with inotify, and the
// opener logs a grant, a refusal and its exit without opening it.
func TestOpenerOpensNoZoneFile(t *testing.T) {
	dir := testutil.TempDir(t, "pstz")
	zone := filepath.Join(dir, "zone")
	b, err := os.ReadFile("/usr/share/zoneinfo/UTC")
	if err != nil {
		b = nil // an unparsable zone is opened all the same
	}
	testutil.Must(t, os.WriteFile(zone, b, 0o644))
	allowed := filepath.Join(dir, "ok")
	testutil.Must(t, os.WriteFile(allowed, []byte("x"), 0o644))

	in, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	testutil.Must(t, err)
	defer unix.Close(in)
	_, err = unix.InotifyAddWatch(in, zone, unix.IN_OPEN)
	testutil.Must(t, err)

	p := spawnEnv(t, "3", "TZ="+zone)
	msg, err := protocol.AppendHello(nil, &protocol.Hello{Version: protocol.Version, Rules: []string{allowed}})
	testutil.Must(t, err)
	p.send(msg, nil)
	if m := p.recv(); m.Type != protocol.TypeReady {
		t.Fatalf("first reply: got %s, want ready (opener stderr: %s)", m.Type, p.stderr.String())
	}
	fd, e := p.open(1, allowed, unix.O_RDONLY)
	if fd < 0 {
		t.Fatalf("open %s: %+v", allowed, e)
	}
	unix.Close(fd)
	if fd, _ := p.open(2, zone, unix.O_RDONLY); fd >= 0 {
		unix.Close(fd)
		t.Fatalf("open %s outside every rule was granted", zone)
	}
	unix.Close(p.sock)
	p.sock = -1
	if code := p.exit(); code != protocol.ExitOK {
		t.Fatalf("opener exit status %d; stderr: %s", code, p.stderr.String())
	}
	if p.stderr.Len() == 0 {
		t.Fatalf("the opener logged nothing: the test would prove nothing")
	}

	buf := make([]byte, 4096)
	n, err := unix.Read(in, buf)
	if err == unix.EAGAIN {
		return // no event: the zone file was never opened
	}
	testutil.Must(t, err)
	if n >= unix.SizeofInotifyEvent {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[0]))
		if ev.Mask&unix.IN_OPEN != 0 {
			t.Fatalf("the opener opened $TZ (%s): it loads the local time zone by path", zone)
		}
	}
}
