//go:build linux

package protocol_test

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/protocol"
)

// TestSendRecvDoNotAllocate checks the claim in socket_unsafe.go: sending and
// receiving a message with one descriptor costs no heap allocation, so the
// per-request path of both sides does not feed the garbage collector.
func TestSendRecvDoNotAllocate(t *testing.T) {
	noLeaks(t)
	a, b := pair(t)
	sent := makeFDs(t, 1)
	msg := protocol.AppendOpened(nil, 1)
	buf, oob, fds := buffers()
	const runs = 8 // AllocsPerRun runs once more to warm up; all fit in the queue

	send := testing.AllocsPerRun(runs, func() {
		if err := protocol.Send(a, msg, sent, unix.MSG_DONTWAIT); err != nil {
			t.Fatalf("Send: %v", err)
		}
	})
	recv := testing.AllocsPerRun(runs, func() {
		m, err := protocol.Recv(b, buf, oob, fds, unix.MSG_DONTWAIT)
		if err != nil || len(m.FDs) != 1 {
			t.Fatalf("Recv: got %d fds, %v; want 1 fd", len(m.FDs), err)
		}
		unix.Close(m.FDs[0])
	})
	expectEmpty(t, b)
	if send != 0 {
		t.Errorf("Send of a 1-fd message: got %v allocations per call, want 0", send)
	}
	if recv != 0 {
		t.Errorf("Recv of a 1-fd message: got %v allocations per call, want 0", recv)
	}

	open := protocol.Open{Path: []byte("/etc/hostname")}
	pathString := "/etc/hostname"
	reqBuf := make([]byte, 0, 64)
	replyBuf := make([]byte, 0, 64)
	batch := []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, '/'}
	items := make([]protocol.Open, 0, protocol.MaxBatch)
	round := testing.AllocsPerRun(200, func() {
		req, err := protocol.AppendOpen(reqBuf[:0], 2, open)
		if err != nil {
			t.Fatalf("AppendOpen: %v", err)
		}
		if _, err := protocol.AppendOpenPath(reqBuf[:0], 2, 0, 0, pathString); err != nil {
			t.Fatalf("AppendOpenPath: %v", err)
		}
		reply := protocol.AppendOpened(replyBuf[:0], 2)
		if err := protocol.Send(a, req, nil, 0); err != nil {
			t.Fatalf("Send request: %v", err)
		}
		m, err := protocol.Recv(b, buf, oob, fds, 0)
		if err != nil {
			t.Fatalf("Recv request: %v", err)
		}
		if _, err := protocol.DecodeOpen(m.Payload); err != nil {
			t.Fatalf("DecodeOpen: %v", err)
		}
		if err := protocol.Send(b, reply, sent, 0); err != nil {
			t.Fatalf("Send reply: %v", err)
		}
		m, err = protocol.Recv(a, buf, oob, fds, 0)
		if err != nil || len(m.FDs) != 1 {
			t.Fatalf("Recv reply: got %d fds, %v; want 1 fd", len(m.FDs), err)
		}
		unix.Close(m.FDs[0])
		if err := protocol.DecodeOpened(m.Payload); err != nil {
			t.Fatalf("DecodeOpened: %v", err)
		}
		items, err = protocol.DecodeOpenBatch(batch, items)
		if err != nil {
			t.Fatalf("DecodeOpenBatch: %v", err)
		}
	})
	if round != 0 {
		t.Errorf("request and 1-fd reply, encoded, sent, received and decoded: got %v allocations, want 0", round)
	}
}

// BenchmarkRoundTripSocketpair measures one open request and its opened reply
// with one descriptor, both ways over an in-process socket pair.
func BenchmarkRoundTripSocketpair(b *testing.B) {
	p, c, err := protocol.Socketpair()
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(p)
	defer unix.Close(c)
	file, err := unix.MemfdCreate("bench", unix.MFD_CLOEXEC)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(file)
	req, err := protocol.AppendOpen(nil, 1, protocol.Open{Path: []byte("/etc/hostname")})
	if err != nil {
		b.Fatal(err)
	}
	reply := protocol.AppendOpened(nil, 1)
	one := []int{file}
	buf, oob, fds := buffers()
	b.ReportAllocs()
	for b.Loop() {
		if err := protocol.Send(p, req, nil, 0); err != nil {
			b.Fatal(err)
		}
		m, err := protocol.Recv(c, buf, oob, fds, 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := protocol.Send(c, reply, one, 0); err != nil {
			b.Fatal(err)
		}
		m, err = protocol.Recv(p, buf, oob, fds, 0)
		if err != nil || len(m.FDs) != 1 {
			b.Fatalf("Recv reply: got %d fds, %v", len(m.FDs), err)
		}
		unix.Close(m.FDs[0])
	}
}
