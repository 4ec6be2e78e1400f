//go:build linux

package protocol_test

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/hostile"
	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/protocol"
)

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
