package protocol_test

import (
	"encoding/binary"
	"testing"

	"github.com/privsep-go/privsep/protocol"
)

func TestStrings(t *testing.T) {
	types := map[protocol.Type]string{
		0: "type(0)", protocol.TypeHello: "hello", protocol.TypeReady: "ready", protocol.TypeOpen: "open",
		protocol.TypeOpened: "opened", protocol.TypeError: "error", protocol.TypeOpenBatch: "open-batch",
		protocol.TypeBatchReply: "batch-reply", 8: "listen", 9: "readdir", 10: "dir-list", 11: "broker", 12: "broker-ack", 13: "type(13)", 255: "type(255)",
	}
	for typ, want := range types {
		if got := typ.String(); got != want {
			t.Errorf("Type(%d).String(): got %q, want %q", uint8(typ), got, want)
		}
	}
	reasons := map[protocol.Reason]string{
		protocol.ReasonOK: "ok", protocol.ReasonDenied: "denied by policy", protocol.ReasonBadRequest: "bad request",
		protocol.ReasonSystem: "system error", protocol.ReasonEscape: "path escapes the rule",
		protocol.ReasonFileType: "not a regular file or directory", protocol.ReasonProtocol: "protocol violation",
		protocol.ReasonLinks: "multiply-linked file; the rule has no hardlinks=yes", protocol.ReasonLimit: "a limit was reached",
		protocol.ReasonDirectory: "a directory, and the rule does not hand out directory descriptors (dirs=yes)",
		10:                       "reason(10)", 0xffff: "reason(65535)",
	}
	for r, want := range reasons {
		if got := r.String(); got != want {
			t.Errorf("Reason(%d).String(): got %q, want %q", uint16(r), got, want)
		}
	}
}

// TestWireConstants pins the numbers that other implementations rely on.
func TestWireConstants(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"Version", protocol.Version, 1},
		{"HeaderSize", protocol.HeaderSize, 16},
		{"MaxMessage", protocol.MaxMessage, 65536},
		{"MaxPayload", protocol.MaxPayload, 65520},
		{"MaxPath", protocol.MaxPath, 4096},
		{"MaxFDs", protocol.MaxFDs, 253},
		{"MaxBatch", protocol.MaxBatch, 253},
		{"MaxRule", protocol.MaxRule, 4352},
		{"HelloNoOpenat2", int(protocol.HelloNoOpenat2), 1},
		{"FeatureOpenat2", int(protocol.FeatureOpenat2), 1},
		{"TypeHello", int(protocol.TypeHello), 1},
		{"TypeReady", int(protocol.TypeReady), 2},
		{"TypeOpen", int(protocol.TypeOpen), 3},
		{"TypeOpened", int(protocol.TypeOpened), 4},
		{"TypeError", int(protocol.TypeError), 5},
		{"TypeOpenBatch", int(protocol.TypeOpenBatch), 6},
		{"TypeBatchReply", int(protocol.TypeBatchReply), 7},
		{"ReasonOK", int(protocol.ReasonOK), 0},
		{"ReasonDenied", int(protocol.ReasonDenied), 1},
		{"ReasonBadRequest", int(protocol.ReasonBadRequest), 2},
		{"ReasonSystem", int(protocol.ReasonSystem), 3},
		{"ReasonEscape", int(protocol.ReasonEscape), 4},
		{"ReasonFileType", int(protocol.ReasonFileType), 5},
		{"ReasonProtocol", int(protocol.ReasonProtocol), 6},
		{"ReasonLinks", int(protocol.ReasonLinks), 7},
		{"ReasonLimit", int(protocol.ReasonLimit), 9},
		{"ReasonDirectory", int(protocol.ReasonDirectory), 8},
		{"TypeListen", int(protocol.TypeListen), 8},
		{"TypeReadDir", int(protocol.TypeReadDir), 9},
		{"TypeDirList", int(protocol.TypeDirList), 10},
		{"TypeBroker", int(protocol.TypeBroker), 11},
		{"TypeBrokerAck", int(protocol.TypeBrokerAck), 12},
		{"HelloBroker", int(protocol.HelloBroker), 2},
		{"FeatureReadDir", int(protocol.FeatureReadDir), 2},
		{"DirListMore", int(protocol.DirListMore), 1},
		{"MaxName", protocol.MaxName, 255},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %d, want %d", c.name, c.got, c.want)
		}
	}
	var h [protocol.HeaderSize]byte
	protocol.Header{Type: protocol.TypeOpen, ID: 1}.Put(h[:])
	if got := binary.LittleEndian.Uint16(h[0:]); got != 0x5350 {
		t.Errorf("magic as a little-endian u16: got %#x, want 0x5350 (\"PS\")", got)
	}
}
