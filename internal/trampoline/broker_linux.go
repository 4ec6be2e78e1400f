//go:build linux

package trampoline

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/broker"
	"github.com/privsep-go/privsep/protocol"
)

// brokerID is the id of the trampoline's one request: it is the only
// client left on the opener's socket.
const brokerID = 1

// handOver installs the broker's seccomp filter and hands its listener to
// the opener on sock, waiting for the ack: until the opener serves it, the
// loader's first open after execve would wait for nobody. The filter
// needs no_new_privs, which the sandbox set before this process started.
// The trampoline's copies of the listener and of sock go: the listener
// now, sock at execve (close-on-exec).
func handOver(sock int) error {
	runtime.LockOSThread() // TSYNC covers the others; execve keeps this one
	// The parent's socket was non-blocking; nothing else uses it now.
	if err := unix.SetNonblock(sock, false); err != nil {
		return fmt.Errorf("making the opener's socket blocking: %w", err)
	}
	lfd, err := broker.InstallFilter()
	if err != nil {
		return fmt.Errorf("installing the seccomp filter: %w", err)
	}
	defer unix.Close(lfd)
	if err := protocol.Send(sock, protocol.AppendBroker(nil, brokerID), []int{lfd}, 0); err != nil {
		return fmt.Errorf("handing the listener to the opener: %w", err)
	}
	buf, oob := make([]byte, protocol.MaxMessage), make([]byte, protocol.OOBSize)
	m, err := protocol.Recv(sock, buf, oob, nil, 0)
	if err != nil {
		return fmt.Errorf("waiting for the opener to serve the listener: %w", err)
	}
	protocol.CloseFDs(m.FDs)
	switch {
	case m.Type == protocol.TypeError:
		e, derr := protocol.DecodeError(m.Payload)
		if derr != nil {
			return fmt.Errorf("the opener refused the listener: %w", derr)
		}
		return fmt.Errorf("the opener refused the listener: %w (%s)", unix.Errno(e.Errno), e.Reason)
	case m.Type != protocol.TypeBrokerAck || m.ID != brokerID:
		return fmt.Errorf("the opener answered the listener with %s id %d, want broker-ack id %d", m.Type, m.ID, brokerID)
	}
	return protocol.DecodeBrokerAck(m.Header, m.Payload)
}
