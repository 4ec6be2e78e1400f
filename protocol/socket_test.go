//go:build linux

package protocol_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/hostile"
	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/protocol"
)

func mustSend(t testing.TB, fd int, msg []byte, fds []int) {
	t.Helper()
	if err := protocol.Send(fd, msg, fds, 0); err != nil {
		t.Fatalf("Send(%d bytes, %d fds): got error %v, want nil", len(msg), len(fds), err)
	}
}

// batchReplyOK returns a batch reply whose n items all succeeded, to be sent
// with n descriptors.
func batchReplyOK(t testing.TB, id uint32, n int) []byte {
	t.Helper()
	msg, err := protocol.AppendBatchReply(nil, id, make([]protocol.Status, n))
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// expectEmpty checks that nothing is waiting on fd: a message sent by a test
// that expected Send to refuse it would show up here.
func expectEmpty(t testing.TB, fd int) {
	t.Helper()
	buf, oob, fds := buffers()
	m, err := protocol.Recv(fd, buf, oob, fds, unix.MSG_DONTWAIT)
	if err != unix.EAGAIN {
		closeFDs(m.FDs)
		t.Fatalf("Recv on a socket that should be empty: got %+v, %v; want bare EAGAIN", m.Header, err)
	}
}

// checkRecvFailed checks what every Recv error promises: no descriptors.
func checkRecvFailed(t testing.TB, m protocol.Msg, err error, is ...error) {
	t.Helper()
	if err == nil {
		closeFDs(m.FDs)
		t.Fatalf("Recv: got %+v with %d fds and nil error, want an error", m.Header, len(m.FDs))
	}
	for _, target := range is {
		if !errors.Is(err, target) {
			t.Errorf("Recv error %q: got errors.Is(err, %v) false, want true", err, target)
		}
	}
	if len(m.FDs) != 0 {
		t.Errorf("Recv error %q: got %d descriptors in the message, want 0", err, len(m.FDs))
		closeFDs(m.FDs)
	}
	if m.Payload != nil {
		t.Errorf("Recv error %q: got payload %x, want nil", err, m.Payload)
	}
}

func TestSocketpair(t *testing.T) {
	noLeaks(t)
	a, b := pair(t)
	for _, fd := range []int{a, b} {
		if typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_SEQPACKET {
			t.Errorf("fd %d: got SO_TYPE %d (%v), want SOCK_SEQPACKET (%d)", fd, typ, err, unix.SOCK_SEQPACKET)
		}
		if dom, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); err != nil || dom != unix.AF_UNIX {
			t.Errorf("fd %d: got SO_DOMAIN %d (%v), want AF_UNIX (%d)", fd, dom, err, unix.AF_UNIX)
		}
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
			t.Errorf("fd %d: got F_GETFD %#x (%v), want FD_CLOEXEC set", fd, fl, err)
		}
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err != nil || fl&unix.O_NONBLOCK != 0 {
			t.Errorf("fd %d: got F_GETFL %#x (%v), want O_NONBLOCK clear", fd, fl, err)
		}
	}
}

func TestSendRecvDescriptors(t *testing.T) {
	for _, n := range []int{0, 1, 64, protocol.MaxFDs} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			noLeaks(t)
			a, b := pair(t)
			sent := makeFDs(t, n)
			var msg []byte
			var typ protocol.Type
			switch n {
			case 0:
				msg, _ = protocol.AppendOpen(nil, 42, protocol.Open{Path: []byte("/etc/hostname")})
				typ = protocol.TypeOpen
			case 1:
				msg, typ = protocol.AppendOpened(nil, 42), protocol.TypeOpened
			default:
				msg, typ = batchReplyOK(t, 42, n), protocol.TypeBatchReply
			}
			mustSend(t, a, msg, sent)
			buf, oob, fds := buffers()
			m, err := protocol.Recv(b, buf, oob, fds, 0)
			if err != nil {
				t.Fatalf("Recv: got error %v, want nil", err)
			}
			t.Cleanup(func() { closeFDs(m.FDs) })
			want := protocol.Header{Type: typ, ID: 42, Len: uint32(len(msg) - protocol.HeaderSize), NFD: uint16(n)}
			if m.Header != want {
				t.Fatalf("Recv: got header %+v, want %+v", m.Header, want)
			}
			if !bytes.Equal(m.Payload, msg[protocol.HeaderSize:]) {
				t.Fatalf("Recv: got payload %x, want %x", m.Payload, msg[protocol.HeaderSize:])
			}
			if len(m.FDs) != n {
				t.Fatalf("Recv: got %d descriptors, want %d", len(m.FDs), n)
			}
			if n > 0 && &m.FDs[0] != &fds[:1][0] {
				t.Errorf("Recv: did not append to the descriptor slice it was given")
			}
			for i, fd := range m.FDs {
				fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
				if err != nil {
					t.Fatalf("fd %d (item %d): F_GETFD: %v, want a valid descriptor", fd, i, err)
				}
				if fl&unix.FD_CLOEXEC == 0 {
					t.Errorf("fd %d (item %d): got F_GETFD %#x, want FD_CLOEXEC", fd, i, fl)
				}
				if got, want := identity(t, fd), identity(t, sent[i]); got != want {
					t.Errorf("fd %d (item %d): got file %+v, want %+v (the file sent in that position)", fd, i, got, want)
				}
				if fd == sent[i] {
					t.Errorf("item %d: got the sender's own descriptor %d, want a new one", i, fd)
				}
			}
		})
	}
}

// TestBatchReplyDescriptorOrder checks that descriptors arrive in the order
// of the successful items, which is how a batch reply pairs them.
func TestBatchReplyDescriptorOrder(t *testing.T) {
	noLeaks(t)
	a, b := pair(t)
	sent := makeFDs(t, 3)
	status := []protocol.Status{{}, {Errno: 2, Reason: protocol.ReasonSystem}, {}, {Errno: 13, Reason: protocol.ReasonDenied}, {}}
	msg, err := protocol.AppendBatchReply(nil, 8, status)
	if err != nil {
		t.Fatal(err)
	}
	mustSend(t, a, msg, sent)
	buf, oob, fds := buffers()
	m, err := protocol.Recv(b, buf, oob, fds, 0)
	if err != nil {
		t.Fatalf("Recv: got error %v, want nil", err)
	}
	defer closeFDs(m.FDs)
	got, ok, err := protocol.DecodeBatchReply(m.Payload, nil)
	if err != nil {
		t.Fatalf("DecodeBatchReply: got error %v, want nil", err)
	}
	if ok != len(m.FDs) || ok != int(m.NFD) {
		t.Fatalf("got %d ok items, %d descriptors, header NFD %d; want all equal", ok, len(m.FDs), m.NFD)
	}
	next := 0
	for i, s := range got {
		if s.Reason != protocol.ReasonOK {
			continue
		}
		if g, w := identity(t, m.FDs[next]), identity(t, sent[next]); g != w {
			t.Errorf("item %d: got file %+v, want %+v", i, g, w)
		}
		next++
	}
}

func TestRecvDescriptorCountMismatch(t *testing.T) {
	tests := []struct {
		declared uint16
		attached int
	}{
		{declared: 2, attached: 1},
		{declared: 0, attached: 3},
		{declared: 1, attached: 0},
		{declared: 1, attached: 2},
		{declared: protocol.MaxFDs, attached: protocol.MaxFDs - 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("declared %d attached %d", tt.declared, tt.attached), func(t *testing.T) {
			noLeaks(t)
			a, b := pair(t)
			sent := makeFDs(t, tt.attached)
			msg := message(protocol.TypeOpened, 31, tt.declared, nil)
			mustSend(t, a, msg, sent)
			buf, oob, fds := buffers()
			m, err := protocol.Recv(b, buf, oob, fds, 0)
			checkRecvFailed(t, m, err, protocol.ErrMalformed)
			// The header was sound, so it is returned for an answer.
			if m.Type != protocol.TypeOpened || m.ID != 31 || m.NFD != tt.declared {
				t.Errorf("Recv: got header %+v, want type opened, id 31, NFD %d", m.Header, tt.declared)
			}
		})
	}
}

// TestRecvBadMessageClosesFDs sends messages that fail ParseHeader with
// descriptors attached: the descriptors must be closed.
func TestRecvBadMessageClosesFDs(t *testing.T) {
	good := protocol.AppendOpened(nil, 5)
	tests := []struct {
		name       string
		msg        []byte
		is         []error
		wantHeader protocol.Header
	}{
		{"one byte", []byte{'P'}, []error{protocol.ErrMalformed}, protocol.Header{}},
		{"bad magic", mutate(good, func(b []byte) { b[0] = 'X' }), []error{protocol.ErrMalformed}, protocol.Header{}},
		{"bad version", mutate(good, func(b []byte) { b[2] = 9 }), []error{protocol.ErrVersion}, protocol.Header{}},
		{"reserved", mutate(good, func(b []byte) { b[15] = 1 }), []error{protocol.ErrMalformed}, protocol.Header{}},
		{"length", append(mutate(good, func([]byte) {}), 1, 2), []error{protocol.ErrMalformed}, protocol.Header{}},
		{"type 0", message(0, 5, 2, nil), []error{protocol.ErrMalformed}, protocol.Header{}},
		{"unknown type", message(99, 5, 2, nil), []error{protocol.ErrMalformed, protocol.ErrUnknownType}, protocol.Header{Type: 99, ID: 5, NFD: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noLeaks(t)
			a, b := pair(t)
			sent := makeFDs(t, 2)
			if err := hostile.SendRaw(a, tt.msg, unix.UnixRights(sent...), 0); err != nil {
				t.Fatalf("sendmsg: %v", err)
			}
			buf, oob, fds := buffers()
			m, err := protocol.Recv(b, buf, oob, fds, 0)
			checkRecvFailed(t, m, err, tt.is...)
			if m.Header != tt.wantHeader {
				t.Errorf("Recv: got header %+v, want %+v", m.Header, tt.wantHeader)
			}
		})
	}
}

// TestRecvTruncated sends messages longer than the receive buffer: the
// kernel sets MSG_TRUNC and still delivers the descriptors, which Recv must
// close. The rest of the truncated message is discarded, so the next message
// arrives intact.
func TestRecvTruncated(t *testing.T) {
	long, err := protocol.AppendOpen(nil, 3, protocol.Open{Path: path(protocol.MaxPath)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		msg    []byte
		bufLen int
		nfd    int
	}{
		{"small buffer, no fds", long, 64, 0},
		{"small buffer, 2 fds", long, 64, 2},
		{"buffer shorter than the header, 1 fd", long, 8, 1},
		// Only MSG_TRUNC can catch this one: the part that fits is a sound
		// message of its own.
		{"sound prefix, rest cut off, 2 fds", append(message(protocol.TypeOpen, 3, 2, append(cat(u32(0), u32(0)), path(40)...)), path(100)...), protocol.HeaderSize + 48, 2},
		{"message over MaxMessage, 3 fds", append(header(protocol.TypeOpen, 3, protocol.MaxMessage+100-protocol.HeaderSize, 3), make([]byte, protocol.MaxMessage+100-protocol.HeaderSize)...), protocol.MaxMessage, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noLeaks(t)
			a, b := pair(t)
			sent := makeFDs(t, tt.nfd)
			var oobSend []byte
			if tt.nfd > 0 {
				oobSend = unix.UnixRights(sent...)
			}
			if err := hostile.SendRaw(a, tt.msg, oobSend, 0); err != nil {
				t.Fatalf("sendmsg: %v", err)
			}
			next := protocol.AppendError(nil, 4, protocol.ErrorReply{Errno: 2, Reason: protocol.ReasonSystem})
			mustSend(t, a, next, nil)
			buf, oob, fds := buffers()
			m, err := protocol.Recv(b, buf[:tt.bufLen], oob, fds, 0)
			checkRecvFailed(t, m, err, protocol.ErrMalformed)
			m, err = protocol.Recv(b, buf, oob, fds, 0)
			if err != nil {
				t.Fatalf("Recv after the truncated message: got error %v, want nil", err)
			}
			if m.Type != protocol.TypeError || m.ID != 4 {
				t.Fatalf("Recv after the truncated message: got %+v, want error id 4", m.Header)
			}
			if len(m.FDs) != 0 {
				closeFDs(m.FDs)
				t.Fatalf("Recv after the truncated message: got %d descriptors, want 0", len(m.FDs))
			}
		})
	}
}

func TestRecvZeroLengthAndEOF(t *testing.T) {
	for _, end := range []string{"shutdown", "close"} {
		t.Run(end, func(t *testing.T) {
			noLeaks(t)
			a, b, closeEnd := pairClosable(t)
			buf, oob, fds := buffers()
			if err := hostile.SendRaw(a, nil, nil, 0); err != nil {
				t.Fatalf("sendmsg of 0 bytes: %v", err)
			}
			m, err := protocol.Recv(b, buf, oob, fds, 0)
			checkRecvFailed(t, m, err, protocol.ErrMalformed)
			if errors.Is(err, io.EOF) {
				t.Fatalf("zero-length message from a connected peer: got %v, want an error that is not io.EOF", err)
			}
			// The stream is still usable.
			mustSend(t, a, protocol.AppendOpened(nil, 6), makeFDs(t, 1))
			m, err = protocol.Recv(b, buf, oob, fds, 0)
			if err != nil || m.ID != 6 || len(m.FDs) != 1 {
				closeFDs(m.FDs)
				t.Fatalf("Recv after a zero-length message: got %+v, %d fds, %v; want opened id 6 with 1 fd", m.Header, len(m.FDs), err)
			}
			closeFDs(m.FDs)

			// A message queued before the end is still delivered.
			mustSend(t, a, protocol.AppendOpened(nil, 7), makeFDs(t, 1))
			switch end {
			case "shutdown":
				if err := unix.Shutdown(a, unix.SHUT_WR); err != nil {
					t.Fatal(err)
				}
			case "close":
				if err := closeEnd(a); err != nil {
					t.Fatal(err)
				}
			}
			m, err = protocol.Recv(b, buf, oob, fds, 0)
			if err != nil || m.ID != 7 || len(m.FDs) != 1 {
				closeFDs(m.FDs)
				t.Fatalf("Recv of the last message: got %+v, %d fds, %v; want opened id 7 with 1 fd", m.Header, len(m.FDs), err)
			}
			closeFDs(m.FDs)
			for i := 0; i < 2; i++ {
				m, err = protocol.Recv(b, buf, oob, fds, 0)
				if err != io.EOF {
					closeFDs(m.FDs)
					t.Fatalf("Recv %d after %s: got %+v, %v; want io.EOF itself", i, end, m.Header, err)
				}
				if m.Type != 0 || len(m.FDs) != 0 {
					t.Fatalf("Recv at EOF: got %+v with %d fds, want an empty message", m.Header, len(m.FDs))
				}
			}
		})
	}
}

// TestRecvPeerClosedWithUnread: a peer that closes with messages from us
// still unread makes our next recvmsg fail with ECONNRESET, which Recv
// reports as end of stream.
func TestRecvPeerClosedWithUnread(t *testing.T) {
	noLeaks(t)
	a, b, closeEnd := pairClosable(t)
	mustSend(t, a, protocol.AppendOpened(nil, 1), makeFDs(t, 1))
	closeEnd(b) // without reading
	buf, oob, fds := buffers()
	for i := 0; i < 2; i++ {
		m, err := protocol.Recv(a, buf, oob, fds, 0)
		if err != io.EOF {
			closeFDs(m.FDs)
			t.Fatalf("Recv %d after the peer closed with our message unread: got %+v, %v; want io.EOF itself", i, m.Header, err)
		}
	}
}

// TestRecvZeroLengthWithFDs sends a message with no data bytes but with
// descriptors, which SOCK_SEQPACKET allows.
func TestRecvZeroLengthWithFDs(t *testing.T) {
	noLeaks(t)
	a, b := pair(t)
	sent := makeFDs(t, 2)
	if err := hostile.SendRaw(a, nil, unix.UnixRights(sent...), 0); err != nil {
		t.Fatalf("sendmsg: %v", err)
	}
	buf, oob, fds := buffers()
	m, err := protocol.Recv(b, buf, oob, fds, 0)
	checkRecvFailed(t, m, err, protocol.ErrMalformed)
	if errors.Is(err, io.EOF) {
		t.Fatalf("got io.EOF, want a malformed message")
	}
}

func TestDontwait(t *testing.T) {
	noLeaks(t)
	a, b := pair(t)
	buf, oob, fds := buffers()
	m, err := protocol.Recv(b, buf, oob, fds, unix.MSG_DONTWAIT)
	if err != unix.EAGAIN {
		t.Fatalf("Recv with MSG_DONTWAIT on an empty socket: got %+v, %#v; want the bare unix.EAGAIN", m.Header, err)
	}
	if len(m.FDs) != 0 {
		t.Fatalf("Recv EAGAIN: got %d fds, want 0", len(m.FDs))
	}

	// Fill the peer's queue: Send must then fail with the bare EAGAIN and
	// leave nothing half-sent.
	sent := makeFDs(t, 1)
	msg := protocol.AppendOpened(nil, 1)
	queued := 0
	for {
		err := protocol.Send(a, msg, sent, unix.MSG_DONTWAIT)
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			t.Fatalf("Send %d with MSG_DONTWAIT: got %#v, want nil or the bare unix.EAGAIN", queued, err)
		}
		queued++
		if queued > 1_000_000 {
			t.Fatalf("Send with MSG_DONTWAIT: no EAGAIN after %d messages", queued)
		}
	}
	if queued == 0 {
		t.Fatalf("Send with MSG_DONTWAIT: got EAGAIN on an empty queue")
	}
	t.Logf("the queue took %d one-descriptor messages", queued)
	for i := 0; i < queued; i++ {
		m, err := protocol.Recv(b, buf, oob, fds, unix.MSG_DONTWAIT)
		if err != nil || len(m.FDs) != 1 {
			closeFDs(m.FDs)
			t.Fatalf("draining message %d of %d: got %d fds, %v; want 1 fd", i, queued, len(m.FDs), err)
		}
		closeFDs(m.FDs)
	}
	expectEmpty(t, b)
}

// TestRecvControlTruncatedSmallOOB forces MSG_CTRUNC with a control buffer
// too small for the descriptors: the ones that fit must be closed too.
func TestRecvControlTruncatedSmallOOB(t *testing.T) {
	for _, oobLen := range []int{0, unix.CmsgSpace(4 * 2), protocol.OOBSize - 8} {
		t.Run(fmt.Sprint(oobLen), func(t *testing.T) {
			noLeaks(t)
			a, b := pair(t)
			sent := makeFDs(t, protocol.MaxFDs)
			mustSend(t, a, batchReplyOK(t, 77, protocol.MaxFDs), sent)
			buf, _, fds := buffers()
			oob := make([]byte, oobLen)
			m, err := protocol.Recv(b, buf, oob, fds, 0)
			checkRecvFailed(t, m, err, protocol.ErrFDsDropped, syscall.EMFILE)
			// The message itself arrived whole: its header may be answered.
			if m.Type != protocol.TypeBatchReply || m.ID != 77 {
				t.Errorf("Recv: got header %+v, want batch-reply id 77", m.Header)
			}
			// And the stream is still in step.
			mustSend(t, a, protocol.AppendOpened(nil, 78), sent[:1])
			m, err = protocol.Recv(b, buf, make([]byte, protocol.OOBSize), fds, 0)
			if err != nil || m.ID != 78 || len(m.FDs) != 1 {
				t.Fatalf("Recv after MSG_CTRUNC: got %+v, %d fds, %v; want opened id 78 with 1 fd", m.Header, len(m.FDs), err)
			}
			closeFDs(m.FDs)
		})
	}
}

const (
	rlimitChildEnv    = "PRIVSEP_PROTOCOL_TEST_RLIMIT_CHILD"
	rlimitChildMarker = "rlimit child: all checks ran"
)

// TestRecvControlTruncatedRlimit makes the kernel drop descriptors because
// the receiver is at RLIMIT_NOFILE. The limit is per process, so the test
// runs in a copy of the test binary.
func TestRecvControlTruncatedRlimit(t *testing.T) {
	if os.Getenv(rlimitChildEnv) == "1" {
		rlimitChild(t)
		return
	}
	if testing.Short() {
		t.Skip("starts a subprocess")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRecvControlTruncatedRlimit$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), rlimitChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("subprocess: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte(rlimitChildMarker)) {
		t.Fatalf("subprocess output lacks %q, so its checks did not run:\n%s", rlimitChildMarker, out)
	}
	t.Logf("subprocess:\n%s", out)
}

func rlimitChild(t *testing.T) {
	for _, room := range []int{0, 3} {
		t.Run(fmt.Sprintf("room %d", room), func(t *testing.T) {
			noLeaks(t)
			a, b := pair(t)
			const n = 10
			sent := makeFDs(t, n)
			mustSend(t, a, batchReplyOK(t, 90, n), sent)
			buf, oob, fds := buffers()

			// The kernel installs a received descriptor at the lowest free
			// number below the soft limit: set the limit so that exactly
			// room numbers are free.
			limit, free := 0, 0
			for ; ; limit++ {
				if _, err := unix.FcntlInt(uintptr(limit), unix.F_GETFD, 0); err == unix.EBADF {
					if free == room {
						break
					}
					free++
				}
			}
			var old unix.Rlimit
			if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
				t.Fatal(err)
			}
			lowered := old
			lowered.Cur = uint64(limit)
			if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lowered); err != nil {
				t.Fatalf("setrlimit: %v", err)
			}
			m, err := protocol.Recv(b, buf, oob, fds, 0)
			if rerr := unix.Setrlimit(unix.RLIMIT_NOFILE, &old); rerr != nil {
				t.Fatalf("restoring RLIMIT_NOFILE: %v", rerr)
			}
			t.Logf("room for %d of %d descriptors (limit %d): Recv error: %v", room, n, limit, err)
			checkRecvFailed(t, m, err, protocol.ErrFDsDropped, syscall.EMFILE)
			if m.Type != protocol.TypeBatchReply || m.ID != 90 {
				t.Errorf("Recv: got header %+v, want batch-reply id 90", m.Header)
			}
		})
	}
	if !t.Failed() {
		fmt.Println(rlimitChildMarker)
	}
}

// TestRecvExtraControlMessage enables SO_PASSCRED on the receiver, so that
// SCM_CREDENTIALS arrives beside (or instead of) SCM_RIGHTS: Recv must refuse
// the message and close the descriptors that came with it.
func TestRecvExtraControlMessage(t *testing.T) {
	creds := unix.UnixCredentials(&unix.Ucred{Pid: int32(os.Getpid()), Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())})
	for _, n := range []int{0, 2, protocol.MaxFDs} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			noLeaks(t)
			a, b := pair(t)
			if err := unix.SetsockoptInt(b, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
				t.Fatal(err)
			}
			sent := makeFDs(t, n)
			oobSend := creds
			if n > 0 {
				oobSend = append(append([]byte(nil), creds...), unix.UnixRights(sent...)...)
			}
			if err := hostile.SendRaw(a, batchReplyOK(t, 55, max(n, 1)), oobSend, 0); err != nil {
				t.Fatalf("sendmsg: %v", err)
			}
			buf, oob, fds := buffers()
			m, err := protocol.Recv(b, buf, oob, fds, 0)
			checkRecvFailed(t, m, err, protocol.ErrMalformed)
		})
	}
	t.Run("zero-length", func(t *testing.T) {
		noLeaks(t)
		a, b := pair(t)
		if err := unix.SetsockoptInt(b, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
			t.Fatal(err)
		}
		if err := hostile.SendRaw(a, nil, nil, 0); err != nil {
			t.Fatal(err)
		}
		buf, oob, fds := buffers()
		m, err := protocol.Recv(b, buf, oob, fds, 0)
		checkRecvFailed(t, m, err, protocol.ErrMalformed)
	})
}

func TestSendRefuses(t *testing.T) {
	noLeaks(t)
	a, b, closeEnd := pairClosable(t)
	ok := protocol.AppendOpened(nil, 1)
	one := makeFDs(t, 1)
	closed, err := unix.MemfdCreate("closed", 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(closed) // a number that was just valid and no longer is
	tests := []struct {
		name string
		msg  []byte
		fds  []int
		is   error
	}{
		{"empty message", nil, nil, nil},
		{"15 bytes", ok[:15], nil, nil},
		{"over MaxMessage", make([]byte, protocol.MaxMessage+1), nil, nil},
		{"254 descriptors", ok, make([]int, protocol.MaxFDs+1), nil},
		{"closed descriptor", ok, []int{one[0], closed}, unix.EBADF},
		{"negative descriptor", ok, []int{-1}, unix.EBADF},
	}
	for _, tt := range tests {
		err := protocol.Send(a, tt.msg, tt.fds, 0)
		if err == nil {
			t.Fatalf("%s: got nil error, want one", tt.name)
		}
		if tt.is != nil && !errors.Is(err, tt.is) {
			t.Errorf("%s: got %v, want an error matching %v", tt.name, err, tt.is)
		}
		expectEmpty(t, b)
	}
	// The largest message is accepted.
	big := message(protocol.TypeOpen, 1, 0, append(cat(u32(0), u32(0)), path(protocol.MaxPayload-8)...))
	mustSend(t, a, big, nil)
	buf, oob, fds := buffers()
	if m, err := protocol.Recv(b, buf, oob, fds, 0); err != nil || int(m.Len) != protocol.MaxPayload {
		t.Fatalf("Recv of a %d-byte message: got %+v, %v; want it whole", len(big), m.Header, err)
	}

	// Not a socket.
	if err := protocol.Send(one[0], ok, nil, 0); !errors.Is(err, unix.ENOTSOCK) {
		t.Errorf("Send on a memfd: got %v, want ENOTSOCK", err)
	}
	// A closed peer gives EPIPE (MSG_NOSIGNAL: no SIGPIPE).
	closeEnd(b)
	if err := protocol.Send(a, ok, nil, 0); !errors.Is(err, unix.EPIPE) {
		t.Errorf("Send to a closed peer: got %v, want EPIPE", err)
	}
}

func TestCloseFDs(t *testing.T) {
	noLeaks(t)
	fds := make([]int, 3)
	for i := range fds {
		fd, err := unix.MemfdCreate("closefds", unix.MFD_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		fds[i] = fd
	}
	protocol.CloseFDs(fds)
	for _, fd := range fds {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
			t.Errorf("fd %d after CloseFDs: got F_GETFD error %v, want EBADF", fd, err)
		}
	}
	protocol.CloseFDs(nil)
}

func TestRecvSyscallErrors(t *testing.T) {
	noLeaks(t)
	buf, oob, fds := buffers()
	mem := makeFDs(t, 1)[0]
	if _, err := protocol.Recv(mem, buf, oob, fds, 0); !errors.Is(err, unix.ENOTSOCK) {
		t.Errorf("Recv on a memfd: got %v, want ENOTSOCK", err)
	}
	if _, err := protocol.Recv(-1, buf, oob, fds, unix.MSG_DONTWAIT); !errors.Is(err, unix.EBADF) || err == unix.EAGAIN {
		t.Errorf("Recv on fd -1: got %v, want EBADF", err)
	}
}

// TestFDAccountingLoop runs thousands of exchanges that mix success and every
// kind of failure and checks, per kind, that the number of open descriptors
// does not move.
func TestFDAccountingLoop(t *testing.T) {
	noLeaks(t)
	a, b := pair(t)
	ca, cb := pair(t) // cb has SO_PASSCRED
	if err := unix.SetsockoptInt(cb, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		t.Fatal(err)
	}
	sent := makeFDs(t, 3)
	buf, oob, fds := buffers()
	open, _ := protocol.AppendOpen(nil, 1, protocol.Open{Path: []byte("/etc/hostname")})
	reply3 := batchReplyOK(t, 2, 3)
	mismatch := message(protocol.TypeOpened, 3, 1, nil)
	badMagic := mutate(protocol.AppendOpened(nil, 4), func(b []byte) { b[0] = 0 })
	creds := unix.UnixCredentials(&unix.Ucred{Pid: int32(os.Getpid()), Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())})
	credsRights := append(append([]byte(nil), creds...), unix.UnixRights(sent...)...)
	smallOOB := make([]byte, unix.CmsgSpace(4))

	sendMsg := func(msg []byte, fds []int) func() error {
		return func() error { mustSend(t, a, msg, fds); return nil }
	}
	sendRaw := func(fd int, data, oob []byte) func() error {
		return func() error { return hostile.SendRaw(fd, data, oob, 0) }
	}
	kinds := []fdKind{
		{name: "ok, no fds", send: sendMsg(open, nil)},
		{name: "ok, 3 fds", send: sendMsg(reply3, sent), nfd: 3},
		{name: "count mismatch", send: sendMsg(mismatch, sent), wantErr: true},
		{name: "bad magic with fds", send: sendMsg(badMagic, sent), wantErr: true},
		{name: "MSG_TRUNC with fds", send: sendMsg(reply3, sent), buf: buf[:20], wantErr: true},
		{name: "MSG_CTRUNC", send: sendMsg(reply3, sent), oob: smallOOB, wantErr: true},
		{name: "SCM_CREDENTIALS with fds", send: sendRaw(ca, reply3, credsRights), passcred: true, wantErr: true},
		{name: "zero-length", send: sendRaw(a, nil, nil), wantErr: true},
		{name: "zero-length with fds", send: sendRaw(a, nil, unix.UnixRights(sent...)), wantErr: true},
		{name: "EAGAIN", flags: unix.MSG_DONTWAIT, wantErr: true, is: unix.EAGAIN},
	}
	accountingRounds(t, fdEnds{b: b, cb: cb, buf: buf, oob: oob, fds: fds}, kinds)
	expectEmpty(t, b)
	expectEmpty(t, cb)
}

// fdKind is one kind of exchange in TestFDAccountingLoop: what is sent
// (nothing, with send nil), and what Recv on b (on cb, with passcred) must
// make of it.
type fdKind struct {
	name     string
	send     func() error
	passcred bool
	buf, oob []byte // nil: the full-size buffers
	flags    int
	wantErr  bool
	is       error // with wantErr, the very error wanted (nil: any)
	nfd      int
}

// fdEnds are the receiving ends of TestFDAccountingLoop (cb has
// SO_PASSCRED) and Recv's full-size buffers.
type fdEnds struct {
	b, cb    int
	buf, oob []byte
	fds      []int
}

// exchange sends and receives one exchange of kind k; a nil error says the
// outcome was the expected one.
func (e fdEnds) exchange(k fdKind) error {
	if k.send != nil {
		if err := k.send(); err != nil {
			return err
		}
	}
	from, buf, oob := e.b, e.buf, e.oob
	if k.passcred {
		from = e.cb
	}
	if k.buf != nil {
		buf = k.buf
	}
	if k.oob != nil {
		oob = k.oob
	}
	m, err := protocol.Recv(from, buf, oob, e.fds, k.flags)
	if k.is != nil && err != k.is {
		return fmt.Errorf("got %v, want %v", err, k.is)
	}
	n := len(m.FDs)
	closeFDs(m.FDs)
	switch {
	case k.wantErr && err == nil:
		return fmt.Errorf("got success, want an error")
	case !k.wantErr && err != nil:
		return fmt.Errorf("got %v, want success", err)
	case n != k.nfd:
		return fmt.Errorf("got %d fds, want %d", n, k.nfd)
	}
	return nil
}

// accountingRounds runs every kind of exchange 400 times and reports, per
// kind, a wrong outcome and the first round that left a descriptor open.
func accountingRounds(t *testing.T, ends fdEnds, kinds []fdKind) {
	t.Helper()
	const rounds = 400 // × len(kinds) exchanges
	leaked := make([]int, len(kinds))
	failed := make([]error, len(kinds))
	for r := 0; r < rounds; r++ {
		for i, k := range kinds {
			if leaked[i] != 0 {
				continue // reported once is enough; more would only slow the loop
			}
			before := testutil.FDs(t, 0)
			if err := ends.exchange(k); err != nil && failed[i] == nil {
				failed[i] = err
			}
			leaked[i] += testutil.FDs(t, 0) - before
			if leaked[i] != 0 {
				leaked[i] = -(r + 1) // remember the round
			}
		}
	}
	for i, k := range kinds {
		if failed[i] != nil {
			t.Errorf("%s: %v", k.name, failed[i])
		}
		if leaked[i] != 0 {
			t.Errorf("%s: got descriptors left open in round %d of %d, want none", k.name, -leaked[i], rounds)
		}
	}
}
