//go:build linux

package child_test

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/hostile"
	"github.com/privsep-go/privsep/protocol"
)

// TestHostileBrokerMessage performs what a compromised parent (or another
// program speaking to an opener) would try with the broker message: hand
// the opener a listener it was not started for, a second one, or a
// malformed one. Each is refused with EPROTO, the descriptor is closed and
// the opener serves on.
func TestHostileBrokerMessage(t *testing.T) {
	efd := func() int {
		fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		return fd
	}
	refused := func(p *hostile.Peer, id uint32, what string) {
		t.Helper()
		if got, err := hostile.CheckError(p.Reply(), id, protocol.ReasonProtocol, unix.EPROTO); err != nil {
			t.Errorf("%s: %v", what, err)
		} else if fd, _ := p.Open(id+100, "/etc/hostname", unix.O_RDONLY); fd < 0 {
			t.Errorf("%s: answered %s, but the opener serves no more", what, got)
		} else {
			unix.Close(fd)
		}
	}

	// An opener whose hello did not allow a broker.
	p := hostile.Start(t, "r:/etc/hostname")
	before := p.FDs(-1)
	p.MustSend(protocol.AppendBroker(nil, 1), []int{efd()})
	refused(p, 1, "broker without HelloBroker")
	if after := p.FDs(before); after != before {
		t.Errorf("opener descriptors: %d before the refused broker message, %d after", before, after)
	}

	// One that allowed it: malformed ones are refused, the first
	// well-formed one is acked, and a second is refused.
	p = hostile.Spawn(t, "info")
	hello, err := protocol.AppendHello(nil, &protocol.Hello{Version: protocol.Version, Flags: protocol.HelloBroker, Rules: []string{"r:/etc/hostname"}})
	if err != nil {
		t.Fatal(err)
	}
	p.MustSend(hello, nil)
	if m := p.Reply(); m.Type != protocol.TypeReady {
		t.Fatalf("first reply: %s, want ready", hostile.Describe(m))
	}
	p.MustSend(protocol.AppendBroker(nil, 2)[:protocol.HeaderSize], nil) // declares one descriptor, carries none
	if m := p.Reply(); m.Type != protocol.TypeError {
		t.Errorf("broker without its descriptor: got %s, want an error", hostile.Describe(m))
	}
	msg := protocol.AppendBroker(nil, 3)
	msg[12] = 2 // two descriptors
	p.MustSend(msg, []int{efd(), efd()})
	refused(p, 3, "broker with two descriptors")
	p.MustSend(protocol.AppendBroker(nil, 4), []int{efd()})
	if m := p.Reply(); m.Type != protocol.TypeBrokerAck || m.ID != 4 {
		t.Fatalf("first broker message: got %s, want broker-ack 4", hostile.Describe(m))
	}
	p.MustSend(protocol.AppendBroker(nil, 5), []int{efd()})
	refused(p, 5, "second broker message")
}
