//go:build linux

package protocol_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/hostile"
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
