package testutil

import (
	"net"
	"testing"
)

// AcceptAndClose accepts and closes every connection to ln, in a goroutine,
// until the test ends and closes ln: a peer that only has to be reachable,
// for a test of whether a sandboxed program can connect at all.
func AcceptAndClose(t testing.TB, ln net.Listener) {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed: the test has ended
			}
			c.Close()
		}
	}()
}

// ListenLoopback listens on a free TCP port of 127.0.0.1 with
// AcceptAndClose and returns the address.
func ListenLoopback(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	Must(t, err)
	AcceptAndClose(t, ln)
	return ln.Addr().String()
}
