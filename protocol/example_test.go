//go:build linux

package protocol_test

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/protocol"
)

// A round trip as the parent and the opener make it, over a socketpair:
// the parent encodes an open request and sends it; the opener receives it,
// checks the header and decodes it, and answers with the descriptor
// attached (SCM_RIGHTS); the parent receives the reply and the descriptor.
func Example() {
	parentEnd, openerEnd, err := protocol.Socketpair()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer unix.Close(parentEnd)
	defer unix.Close(openerEnd)
	buf := make([]byte, protocol.MaxMessage)
	oob := make([]byte, protocol.OOBSize)
	fds := make([]int, 0, protocol.MaxFDs)

	// The parent asks.
	req, _ := protocol.AppendOpenPath(nil, 7, unix.O_RDONLY, 0, "/dev/null")
	if err := protocol.Send(parentEnd, req, nil, 0); err != nil {
		fmt.Println(err)
		return
	}

	// The opener receives, decodes and answers.
	m, err := protocol.Recv(openerEnd, buf, oob, fds, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	open, err := protocol.DecodeOpen(m.Payload)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("opener got: %s id %d path %s\n", m.Type, m.ID, open.Path)
	fd, err := unix.Open(string(open.Path), int(open.Flags)|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	err = protocol.Send(openerEnd, protocol.AppendOpened(nil, m.ID), []int{fd}, 0)
	unix.Close(fd) // the parent has its own copy once Send returns
	if err != nil {
		fmt.Println(err)
		return
	}

	// The parent receives the reply and owns the descriptor it carries.
	m, err = protocol.Recv(parentEnd, buf, oob, fds, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	f := os.NewFile(uintptr(m.FDs[0]), "/dev/null")
	defer f.Close()
	fmt.Printf("parent got: %s id %d with %d descriptor, %v\n", m.Type, m.ID, len(m.FDs), protocol.DecodeOpened(m.Payload))
	// Output:
	// opener got: open id 7 path /dev/null
	// parent got: opened id 7 with 1 descriptor, <nil>
}
