//go:build linux

package child_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/child"
	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/protocol"
)

func TestMain(m *testing.M) {
	child.Init()
	testutil.LoadLocalZone()
	os.Exit(m.Run())
}

func TestEndOfStreamExitsZero(t *testing.T) {
	p := start(t, "/etc/hostname")
	testutil.Must(t, unix.Shutdown(p.sock, unix.SHUT_WR))
	if got := p.exit(); got != protocol.ExitOK {
		t.Errorf("exit status: got %d, want 0", got)
	}
}

func TestEndOfStreamBeforeHello(t *testing.T) {
	p := spawn(t, "3")
	testutil.Must(t, unix.Shutdown(p.sock, unix.SHUT_WR))
	if got := p.exit(); got != protocol.ExitOK {
		t.Errorf("exit status: got %d, want 0; stderr: %s", got, p.stderr.String())
	}
}

func TestBadInvocation(t *testing.T) {
	for _, arg := range []string{"x", "-1", "0", "2", "9"} {
		t.Run(arg, func(t *testing.T) {
			p := spawn(t, arg)
			if got := p.exit(); got != protocol.ExitUsage {
				t.Errorf("fd argument %q: exit status %d, want %d", arg, got, protocol.ExitUsage)
			}
		})
	}
	t.Run("not a seqpacket socket", func(t *testing.T) {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		testutil.Must(t, err)
		defer unix.Close(fds[0])
		f := os.NewFile(uintptr(fds[1]), "stream")
		cmd := exec.Command("/proc/self/exe", protocol.OpenerArg, "3")
		cmd.Args[0] = protocol.OpenerArgv0
		runWantUsage(t, cmd, f)
	})
	t.Run("peer is not the parent", func(t *testing.T) {
		// The socket pair is made by a helper process, so SO_PEERCRED names
		// that process, not the opener's parent.
		a, b, err := protocol.Socketpair()
		testutil.Must(t, err)
		defer unix.Close(a)
		theirs := os.NewFile(uintptr(b), "end")
		// Hand our end to a grandchild: start the opener from a shell that is
		// its parent, while the socket's creator is this test process.
		cmd := exec.Command("/bin/sh", "-c", `"$0" "$@"; exit $?`, "/proc/"+strconv.Itoa(os.Getpid())+"/exe", protocol.OpenerArg, "3")
		runWantUsage(t, cmd, theirs)
	})
}

// runWantUsage runs cmd, which starts an opener, with sock as its
// descriptor 3, and fails unless the opener refuses it with ExitUsage.
func runWantUsage(t *testing.T, cmd *exec.Cmd, sock *os.File) {
	t.Helper()
	cmd.Env = []string{protocol.OpenerEnv()}
	cmd.ExtraFiles = []*os.File{sock}
	err := cmd.Run()
	sock.Close()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != protocol.ExitUsage {
		t.Errorf("got %v, want exit status %d", err, protocol.ExitUsage)
	}
}

func TestHandshakeViolations(t *testing.T) {
	hello := func(rules ...string) []byte {
		msg, err := protocol.AppendHello(nil, &protocol.Hello{Version: protocol.Version, Rules: rules})
		testutil.Must(t, err)
		return msg
	}
	open, err := protocol.AppendOpenPath(nil, 1, 0, 0, "/etc/hostname")
	testutil.Must(t, err)
	badVersion := hello("/etc/hostname")
	binary.LittleEndian.PutUint16(badVersion[protocol.HeaderSize:], 2)
	for _, tc := range []struct {
		name  string
		msg   []byte
		errno syscall.Errno
	}{
		{"request before hello", open, unix.EPROTO},
		{"bad rule", hello("relative"), unix.EINVAL},
		{"unclean rule", hello("/a/../b"), unix.EINVAL},
		{"hello version 2", badVersion, unix.EPROTONOSUPPORT},
		{"garbage", []byte("GET / HTTP/1.1\r\n\r\n"), unix.EPROTO},
		{"short", []byte{'P', 'S', 1}, unix.EPROTO},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := spawn(t, "3")
			p.sendRaw(tc.msg)
			p.expectError(0, protocol.ReasonProtocol, tc.errno)
			if got := p.exit(); got != protocol.ExitProtocol {
				t.Errorf("exit status: got %d, want %d", got, protocol.ExitProtocol)
			}
		})
	}
}

func TestRequestViolationsAreAnswered(t *testing.T) {
	p := start(t, "/etc/hostname")
	pid := p.cmd.Process.Pid
	fd, e := p.open(1, "/etc/hostname", 0)
	if fd < 0 {
		t.Fatalf("open: %+v", e)
	}
	unix.Close(fd)
	// The opener closes its copy just after sending; let that happen.
	before := testutil.FDs(t, pid)
	for i := 0; i < 100; i++ {
		time.Sleep(10 * time.Millisecond)
		n := testutil.FDs(t, pid)
		if n == before {
			break
		}
		before = n
	}

	// A second hello: the policy is fixed.
	msg, err := protocol.AppendHello(nil, &protocol.Hello{Version: protocol.Version, Rules: []string{"/"}})
	testutil.Must(t, err)
	p.send(msg, nil)
	p.expectError(0, protocol.ReasonProtocol, unix.EPROTO)
	if _, e := p.open(2, "/etc/passwd", 0); e.Reason != protocol.ReasonDenied {
		t.Fatalf("after a second hello: /etc/passwd got %+v, want denied", e)
	}

	// A type that is not a request.
	p.send(protocol.AppendReady(nil, protocol.Ready{PID: 1, Version: 1}), nil)
	p.expectError(0, protocol.ReasonProtocol, unix.EPROTO)
	p.send(protocol.AppendOpened(nil, 7), []int{0})
	p.expectError(7, protocol.ReasonProtocol, unix.EPROTO)

	// An unknown type with a sound header.
	raw := protocol.AppendError(nil, 9, protocol.ErrorReply{Errno: 1, Reason: 1})
	raw[3] = 99
	p.sendRaw(raw)
	p.expectError(9, protocol.ReasonProtocol, unix.EPROTO)

	// Descriptors attached to an open request are closed, and it is refused.
	pipe := testutil.Pipe(t)
	req, err := protocol.AppendOpenPath(nil, 10, 0, 0, "/etc/hostname")
	testutil.Must(t, err)
	req[12] = 2 // the header's descriptor count
	p.send(req, pipe)
	p.expectError(10, protocol.ReasonProtocol, unix.EPROTO)

	// A malformed payload: an empty path.
	req, err = protocol.AppendOpenPath(nil, 11, 0, 0, "x")
	testutil.Must(t, err)
	req = req[:len(req)-1]
	binary.LittleEndian.PutUint32(req[8:], uint32(len(req)-protocol.HeaderSize))
	p.sendRaw(req)
	p.expectError(11, protocol.ReasonProtocol, unix.EPROTO)

	// A path one byte over the limit.
	req, err = protocol.AppendOpenPath(nil, 14, 0, 0, "/x")
	testutil.Must(t, err)
	req = append(req[:protocol.HeaderSize+8], "/"+strings.Repeat("a", protocol.MaxPath)...)
	binary.LittleEndian.PutUint32(req[8:], uint32(len(req)-protocol.HeaderSize))
	p.sendRaw(req)
	p.expectError(14, protocol.ReasonProtocol, unix.EPROTO)

	// A descriptor count that disagrees with what is attached.
	req, err = protocol.AppendOpenPath(nil, 12, 0, 0, "/etc/hostname")
	testutil.Must(t, err)
	p.send(req, pipe[:1])
	p.expectError(12, protocol.ReasonProtocol, unix.EPROTO)

	// Still serving, and nothing kept.
	fd, e = p.open(13, "/etc/hostname", 0)
	if fd < 0 {
		t.Fatalf("open after violations: %+v", e)
	}
	unix.Close(fd)
	deadline := time.Now().Add(time.Second)
	for testutil.FDs(t, pid) != before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := testutil.FDs(t, pid); got != before {
		t.Errorf("opener descriptors: got %d, want %d", got, before)
	}
	testutil.Must(t, unix.Shutdown(p.sock, unix.SHUT_WR))
	if got := p.exit(); got != protocol.ExitOK {
		t.Errorf("exit status: got %d, want 0", got)
	}
}

func TestStreamViolationsExit(t *testing.T) {
	open, err := protocol.AppendOpenPath(nil, 5, 0, 0, "/etc/hostname")
	testutil.Must(t, err)
	badMagic := append([]byte(nil), open...)
	badMagic[0] = 'X'
	reserved := append([]byte(nil), open...)
	reserved[15] = 1
	long := append([]byte(nil), open...)
	binary.LittleEndian.PutUint32(long[8:], uint32(len(open)))
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"zero-length message", []byte{}},
		{"short header", open[:10]},
		{"bad magic", badMagic},
		{"reserved header bytes", reserved},
		{"declared length overruns", long},
		{"larger than MaxMessage", make([]byte, protocol.MaxMessage+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := start(t, "/etc/hostname")
			p.sendRaw(tc.msg)
			if got := p.exit(); got != protocol.ExitProtocol {
				t.Errorf("exit status: got %d, want %d; stderr: %s", got, protocol.ExitProtocol, p.stderr.String())
			}
		})
	}
}

func TestReplies(t *testing.T) {
	dir := t.TempDir()
	testutil.Must(t, os.WriteFile(filepath.Join(dir, "f"), []byte("data"), 0o644))
	testutil.Must(t, unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	testutil.Must(t, os.Symlink("/etc/hostname", filepath.Join(dir, "link")))
	testutil.Must(t, os.Symlink("f", filepath.Join(dir, "exactlink")))
	for _, noOpenat2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", noOpenat2), func(t *testing.T) {
			p := helloFlags(t, walkFlags(noOpenat2), dir+"/", filepath.Join(dir, "exactlink"), "/nonexistent-dir/x")
			r, err := protocol.DecodeReady(p.recv().Payload)
			testutil.Must(t, err)
			if got, want := r.Features&protocol.FeatureOpenat2 != 0, !noOpenat2; got != want {
				t.Fatalf("openat2 feature: got %v, want %v", got, want)
			}
			for i, tc := range []struct {
				path   string
				flags  int
				reason protocol.Reason
				errno  syscall.Errno
			}{
				{dir + "/f", 0, protocol.ReasonOK, 0},
				{dir, unix.O_DIRECTORY, protocol.ReasonDirectory, unix.EACCES},
				{dir + "/missing", 0, protocol.ReasonSystem, unix.ENOENT},
				{dir + "/f/x", 0, protocol.ReasonSystem, unix.ENOTDIR},
				{dir + "/fifo", 0, protocol.ReasonFileType, unix.EACCES},
				{dir + "/link", 0, protocol.ReasonEscape, 0},
				{dir + "/exactlink", 0, protocol.ReasonEscape, unix.ELOOP},
				{"/etc/passwd", 0, protocol.ReasonDenied, unix.EACCES},
				{dir + "/f", unix.O_WRONLY, protocol.ReasonDenied, unix.EACCES},
				{dir + "/f", unix.O_NOATIME, protocol.ReasonBadRequest, unix.EINVAL},
				{dir + "/./f", 0, protocol.ReasonBadRequest, unix.EINVAL},
				{"/" + strings.Repeat("a", protocol.MaxPath-1), 0, protocol.ReasonDenied, unix.EACCES},
				{dir + "/f\x00", 0, protocol.ReasonBadRequest, unix.EINVAL},
				{"/nonexistent-dir/x", 0, protocol.ReasonSystem, unix.ENOENT},
			} {
				fd, e := p.open(uint32(i+1), tc.path, tc.flags)
				if fd >= 0 {
					unix.Close(fd)
				}
				if e.Reason != tc.reason || (tc.errno != 0 && syscall.Errno(e.Errno) != tc.errno) {
					t.Errorf("%.80q flags %#x: got reason %s errno %v, want %s %v", tc.path, tc.flags, e.Reason, syscall.Errno(e.Errno), tc.reason, tc.errno)
				}
			}
			// The fallback answers an escaping symlink with ELOOP, openat2
			// with EXDEV.
			_, e := p.open(100, dir+"/link", 0)
			want := unix.EXDEV
			if noOpenat2 {
				want = unix.ELOOP
			}
			if syscall.Errno(e.Errno) != want {
				t.Errorf("escaping symlink: got errno %v, want %v", syscall.Errno(e.Errno), want)
			}
			testutil.Must(t, unix.Shutdown(p.sock, unix.SHUT_WR))
			if got := p.exit(); got != 0 {
				t.Errorf("exit status: got %d, want 0", got)
			}
		})
	}
}

func TestBatchReply(t *testing.T) {
	dir := t.TempDir()
	testutil.Must(t, os.WriteFile(filepath.Join(dir, "f"), []byte("data"), 0o644))
	p := start(t, dir+"/")
	items := make([]protocol.Open, protocol.MaxBatch)
	for i := range items {
		items[i].Path = []byte(dir + "/f")
		if i%3 == 1 {
			items[i].Path = []byte(dir + "/missing")
		}
	}
	msg, err := protocol.AppendOpenBatch(nil, 42, items)
	testutil.Must(t, err)
	p.send(msg, nil)
	m := p.recv()
	defer protocol.CloseFDs(m.FDs)
	if m.Type != protocol.TypeBatchReply || m.ID != 42 {
		t.Fatalf("got %s id %d, want batch-reply 42", m.Type, m.ID)
	}
	st, ok, err := protocol.DecodeBatchReply(m.Payload, nil)
	testutil.Must(t, err)
	if len(st) != protocol.MaxBatch || ok != len(m.FDs) || ok != protocol.MaxBatch-protocol.MaxBatch/3 {
		t.Fatalf("got %d statuses, %d ok, %d descriptors", len(st), ok, len(m.FDs))
	}
	for i, s := range st {
		if (i%3 == 1) != (s.Reason == protocol.ReasonSystem && s.Errno == uint32(unix.ENOENT)) {
			t.Errorf("item %d: got %+v", i, s)
		}
	}
	for _, fd := range m.FDs {
		b := make([]byte, 8)
		n, err := unix.Pread(fd, b, 0)
		if err != nil || string(b[:n]) != "data" {
			t.Fatalf("descriptor %d reads %q, %v", fd, b[:n], err)
		}
	}
}

func TestParentDeathEndsOpener(t *testing.T) {
	p := start(t, "/etc/hostname")
	unix.Close(p.sock)
	p.sock = -1
	if got := p.exit(); got != 0 {
		t.Errorf("exit status after the parent's end closed: got %d, want 0", got)
	}
}

func TestLeakedDescriptorIsClosed(t *testing.T) {
	// A descriptor without close-on-exec, inherited across exec, is closed
	// before the opener serves: the opener holds nothing it did not ask
	// for.
	a, b, err := protocol.Socketpair()
	testutil.Must(t, err)
	defer unix.Close(a)
	r, w, err := os.Pipe()
	testutil.Must(t, err)
	defer w.Close()
	theirs := os.NewFile(uintptr(b), "end")
	var stderr bytes.Buffer
	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{protocol.OpenerArgv0, protocol.OpenerArg, "3"},
		Env:        []string{protocol.OpenerEnv(), protocol.LogLevelEnv + "=info"},
		ExtraFiles: []*os.File{theirs, r}, // r becomes descriptor 4
		Stderr:     &stderr,
	}
	testutil.Must(t, cmd.Start())
	theirs.Close()
	r.Close()
	msg, err := protocol.AppendHello(nil, &protocol.Hello{Version: protocol.Version, Rules: []string{"/etc/hostname"}})
	testutil.Must(t, err)
	testutil.Must(t, protocol.Send(a, msg, nil, 0))
	buf, oob := make([]byte, protocol.MaxMessage), make([]byte, protocol.OOBSize)
	if _, err := protocol.Recv(a, buf, oob, nil, 0); err != nil {
		t.Fatal(err)
	}
	// Descriptor 4 may have been reused since (for a rule's directory), but
	// it must not be the pipe any more.
	if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/4", cmd.Process.Pid)); strings.HasPrefix(l, "pipe:") {
		t.Errorf("descriptor 4 is still the inherited pipe (%s) in the opener", l)
	}
	testutil.Must(t, unix.Shutdown(a, unix.SHUT_WR))
	testutil.Must(t, cmd.Wait())
	if !strings.Contains(stderr.String(), "closed descriptors inherited across exec") {
		t.Errorf("no log line about the closed descriptor: %s", stderr.String())
	}
}
