package protocol_test

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/privsep-go/privsep/protocol"
)

// mutate returns a copy of b with f applied.
func mutate(b []byte, f func(b []byte)) []byte {
	c := append([]byte(nil), b...)
	f(c)
	return c
}

func TestParseHeaderErrors(t *testing.T) {
	open, err := protocol.AppendOpen(nil, 0x01020304, protocol.Open{Path: []byte("/etc/hostname")})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := protocol.ParseHeader(open); err != nil {
		t.Fatalf("base message: got error %v, want nil", err)
	}
	put16 := func(off int, v uint16) func([]byte) {
		return func(b []byte) { binary.LittleEndian.PutUint16(b[off:], v) }
	}
	put32 := func(off int, v uint32) func([]byte) {
		return func(b []byte) { binary.LittleEndian.PutUint32(b[off:], v) }
	}
	big := message(protocol.TypeOpen, 1, 0, append(cat(u32(0), u32(0)), path(protocol.MaxPayload-8)...))
	if _, _, err := protocol.ParseHeader(big); err != nil {
		t.Fatalf("largest message: got error %v, want nil", err)
	}
	tests := []struct {
		name string
		msg  []byte
		is   []error
		frag string // a fragment of the message that shows which check fired
	}{
		{"empty", nil, []error{protocol.ErrMalformed}, "shorter"},
		{"15 bytes", open[:15], []error{protocol.ErrMalformed}, "shorter"},
		{"bad magic byte 0", mutate(open, func(b []byte) { b[0] = 'p' }), []error{protocol.ErrMalformed}, "magic"},
		{"bad magic byte 1", mutate(open, func(b []byte) { b[1] = 's' }), []error{protocol.ErrMalformed}, "magic"},
		{"swapped magic", mutate(open, func(b []byte) { b[0], b[1] = 'S', 'P' }), []error{protocol.ErrMalformed}, "magic"},
		{"version 0", mutate(open, func(b []byte) { b[2] = 0 }), []error{protocol.ErrVersion}, "version"},
		{"version 2", mutate(open, func(b []byte) { b[2] = 2 }), []error{protocol.ErrVersion}, "version"},
		{"version 255", mutate(open, func(b []byte) { b[2] = 255 }), []error{protocol.ErrVersion}, "version"},
		{"reserved low byte", mutate(open, func(b []byte) { b[14] = 1 }), []error{protocol.ErrMalformed}, "reserved"},
		{"reserved high byte", mutate(open, func(b []byte) { b[15] = 0x80 }), []error{protocol.ErrMalformed}, "reserved"},
		{"length one short", mutate(open, put32(8, uint32(len(open)-protocol.HeaderSize-1))), []error{protocol.ErrMalformed}, "carries"},
		{"length one long", mutate(open, put32(8, uint32(len(open)-protocol.HeaderSize+1))), []error{protocol.ErrMalformed}, "carries"},
		{"length 0 with payload", mutate(open, put32(8, 0)), []error{protocol.ErrMalformed}, "carries"},
		{"trailing byte", append(mutate(open, func([]byte) {}), 0), []error{protocol.ErrMalformed}, "carries"},
		{"length over MaxPayload", mutate(open, put32(8, protocol.MaxPayload+1)), []error{protocol.ErrMalformed}, "exceeds"},
		{"length 0xffffffff", mutate(open, put32(8, 0xffffffff)), []error{protocol.ErrMalformed}, "exceeds"},
		{"whole message over MaxMessage", append(mutate(big, put32(8, protocol.MaxPayload+1)), 0), []error{protocol.ErrMalformed}, "exceeds"},
		{"254 descriptors", mutate(open, put16(12, protocol.MaxFDs+1)), []error{protocol.ErrMalformed}, "descriptors"},
		{"65535 descriptors", mutate(open, put16(12, 0xffff)), []error{protocol.ErrMalformed}, "descriptors"},
		// Type 0 is reserved: a zero Type is how callers of Recv tell a
		// header that cannot be answered, so it must not come back.
		{"type 0", mutate(open, func(b []byte) { b[3] = 0 }), []error{protocol.ErrMalformed}, "type 0"},
		{"all-zero header after the magic", message(0, 0, 0, nil), []error{protocol.ErrMalformed}, "type 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, p, err := protocol.ParseHeader(tt.msg)
			if err == nil {
				t.Fatalf("got header %+v and nil error, want an error", h)
			}
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("error %q: got errors.Is(err, %q) false, want true", err, target)
				}
			}
			if errors.Is(err, protocol.ErrUnknownType) {
				t.Errorf("error %q: got errors.Is(err, ErrUnknownType) true, want false", err)
			}
			if !strings.Contains(err.Error(), tt.frag) {
				t.Errorf("error %q: want it to mention %q", err, tt.frag)
			}
			if !strings.HasPrefix(err.Error(), "protocol: ") {
				t.Errorf("error %q: want it to start with %q", err, "protocol: ")
			}
			if h != (protocol.Header{}) || p != nil {
				t.Errorf("got header %+v and payload %x, want the zero header and nil", h, p)
			}
		})
	}
}

func TestParseHeaderUnknownType(t *testing.T) {
	for _, typ := range []protocol.Type{13, 100, 255} {
		msg := message(typ, 0xabcdef01, 3, []byte("xyz"))
		h, p, err := protocol.ParseHeader(msg)
		if !errors.Is(err, protocol.ErrUnknownType) || !errors.Is(err, protocol.ErrMalformed) {
			t.Fatalf("type %d: got error %v, want one matching ErrUnknownType and ErrMalformed", typ, err)
		}
		want := protocol.Header{Type: typ, ID: 0xabcdef01, Len: 3, NFD: 3}
		if h != want {
			t.Fatalf("type %d: got header %+v, want %+v", typ, h, want)
		}
		if p != nil {
			t.Fatalf("type %d: got payload %x, want nil", typ, p)
		}
	}
	// An unknown type does not excuse any other fault: those are reported
	// with the zero header.
	for name, msg := range map[string][]byte{
		"reserved":    mutate(message(13, 7, 0, nil), func(b []byte) { b[14] = 1 }),
		"length":      mutate(message(13, 7, 0, []byte("ab")), func(b []byte) { b[8] = 1 }),
		"descriptors": message(13, 7, protocol.MaxFDs+1, nil),
	} {
		h, _, err := protocol.ParseHeader(msg)
		if err == nil || errors.Is(err, protocol.ErrUnknownType) || h != (protocol.Header{}) {
			t.Fatalf("unknown type with bad %s: got header %+v, error %v; want the zero header and an error not matching ErrUnknownType", name, h, err)
		}
	}
}

// decodeResult runs one decoder and reports whether its result is empty, as
// every decoder's result must be when it returns an error.
type decoder func(p []byte) (empty bool, err error)

var (
	decHello = func(p []byte) (bool, error) {
		h, err := protocol.DecodeHello(p)
		return h.Version == 0 && h.Flags == 0 && h.Rules == nil, err
	}
	decReady = func(p []byte) (bool, error) {
		r, err := protocol.DecodeReady(p)
		return r == protocol.Ready{}, err
	}
	decOpen = func(p []byte) (bool, error) {
		o, err := protocol.DecodeOpen(p)
		return o.Flags == 0 && o.Mode == 0 && o.Path == nil, err
	}
	decOpened = func(p []byte) (bool, error) {
		return true, protocol.DecodeOpened(p)
	}
	decError = func(p []byte) (bool, error) {
		e, err := protocol.DecodeError(p)
		return e == protocol.ErrorReply{}, err
	}
	decOpenBatch = func(p []byte) (bool, error) {
		// Pass a slice with stale items: on error none may be returned.
		items, err := protocol.DecodeOpenBatch(p, make([]protocol.Open, 4))
		return len(items) == 0, err
	}
	decBatchReply = func(p []byte) (bool, error) {
		st, ok, err := protocol.DecodeBatchReply(p, make([]protocol.Status, 4))
		return len(st) == 0 && ok == 0, err
	}
)

func TestDecodeErrors(t *testing.T) {
	mal := []error{protocol.ErrMalformed}
	ver := []error{protocol.ErrVersion}
	okStatus := cat(u32(0), u16(0), u16(0))
	failStatus := cat(u32(2), u16(3), u16(0))
	item := func(flags, mode uint32, p string) []byte { return cat(u32(flags), u32(mode), u16(len(p)), p) }
	tests := []struct {
		name string
		dec  decoder
		p    []byte
		is   []error
		frag string
	}{
		// hello: u16 version, u16 flags, u16 count, u16 reserved, rules
		{"hello empty", decHello, nil, mal, "shorter"},
		{"hello 7 bytes", decHello, cat(u16(1), u16(0), u16(0), byte(0)), mal, "shorter"},
		{"hello reserved", decHello, cat(u16(1), u16(0), u16(0), u16(1)), mal, "reserved"},
		{"hello version 0", decHello, cat(u16(0), u16(0), u16(0), u16(0)), ver, "version"},
		{"hello version 2", decHello, cat(u16(2), u16(0), u16(1), u16(0), u16(1), "/"), ver, "version"},
		{"hello version 0x0101", decHello, cat(u16(0x101), u16(0), u16(0), u16(0)), ver, "version"},
		{"hello unknown flag 1<<3", decHello, cat(u16(1), u16(8), u16(0), u16(0)), mal, "flags"},
		{"hello broker-only without broker", decHello, cat(u16(1), u16(4), u16(0), u16(0)), mal, "HelloBrokerOnly"},
		{"hello unknown flag 1<<15", decHello, cat(u16(1), u16(0x8001), u16(0), u16(0)), mal, "flags"},
		{"hello count without rules", decHello, cat(u16(1), u16(0), u16(1), u16(0)), mal, "declares"},
		{"hello count 65535", decHello, cat(u16(1), u16(0), u16(0xffff), u16(0), u16(1), "/"), mal, "declares"},
		{"hello count over bytes/3", decHello, cat(u16(1), u16(0), u16(2), u16(0), u16(3), "/ab"), mal, "declares"},
		{"hello length field truncated", decHello, cat(u16(1), u16(0), u16(2), u16(0), u16(3), "/ab", byte(0)), mal, "truncated"},
		{"hello rule length 0", decHello, cat(u16(1), u16(0), u16(1), u16(0), u16(0), "/"), mal, "length 0"},
		{"hello rule over MaxRule", decHello, cat(u16(1), u16(0), u16(1), u16(0), u16(protocol.MaxRule+1), repeat('/', protocol.MaxRule+1)), mal, "want 1 to"},
		{"hello rule 0xffff", decHello, cat(u16(1), u16(0), u16(1), u16(0), u16(0xffff), "/ab"), mal, "want 1 to"},
		{"hello rule overrun", decHello, cat(u16(1), u16(0), u16(1), u16(0), u16(4), "/ab"), mal, "overruns"},
		{"hello second rule overrun", decHello, cat(u16(1), u16(0), u16(2), u16(0), u16(1), "/", u16(9), "/abcdefg"), mal, "overruns"},
		{"hello trailing byte", decHello, cat(u16(1), u16(0), u16(1), u16(0), u16(1), "/", byte(0)), mal, "trailing"},
		{"hello no rules, trailing bytes", decHello, cat(u16(1), u16(0), u16(0), u16(0), u16(1), "/"), mal, "trailing"},

		// ready: u32 pid, u16 version, u16 features
		{"ready empty", decReady, nil, mal, "want 8"},
		{"ready 7 bytes", decReady, cat(u32(1), u16(1), byte(0)), mal, "want 8"},
		{"ready 9 bytes", decReady, cat(u32(1), u16(1), u16(0), byte(0)), mal, "want 8"},
		{"ready version 0", decReady, cat(u32(1), u16(0), u16(0)), ver, "version"},
		{"ready version 2", decReady, cat(u32(1), u16(2), u16(0)), ver, "version"},
		{"ready unknown feature", decReady, cat(u32(1), u16(1), u16(4)), mal, "features"},
		{"ready pid 0", decReady, cat(u32(0), u16(1), u16(1)), mal, "pid 0"},

		// open: u32 flags, u32 mode, path
		{"open empty", decOpen, nil, mal, "shorter"},
		{"open 7 bytes", decOpen, cat(u32(0), u16(0), byte(0)), mal, "shorter"},
		{"open no path", decOpen, cat(u32(0), u32(0)), mal, "path of 0 bytes"},
		{"open path over MaxPath", decOpen, cat(u32(0), u32(0), path(protocol.MaxPath+1)), mal, "path of 4097 bytes"},

		// opened: empty
		{"opened 1 byte", decOpened, []byte{0}, mal, "want 0"},
		{"opened 8 bytes", decOpened, okStatus, mal, "want 0"},

		// error: u32 errno, u16 reason, u16 reserved
		{"error empty", decError, nil, mal, "want 8"},
		{"error 7 bytes", decError, failStatus[:7], mal, "want 8"},
		{"error 9 bytes", decError, cat(failStatus, byte(0)), mal, "want 8"},
		{"error reserved", decError, cat(u32(2), u16(3), u16(1)), mal, "reserved"},
		{"error reason 10", decError, cat(u32(2), u16(10), u16(0)), mal, "unknown reason 10"},
		{"error reason 0xffff", decError, cat(u32(2), u16(0xffff), u16(0)), mal, "unknown reason"},
		{"error reason ok", decError, cat(u32(2), u16(0), u16(0)), mal, "no failure"},
		{"error errno 0", decError, cat(u32(0), u16(1), u16(0)), mal, "no failure"},
		{"error all zero", decError, okStatus, mal, "no failure"},

		// open-batch: u16 count, u16 reserved, items of u32 flags, u32 mode, u16 length, path
		{"open-batch empty", decOpenBatch, nil, mal, "shorter"},
		{"open-batch 3 bytes", decOpenBatch, cat(u16(1), byte(0)), mal, "shorter"},
		{"open-batch reserved", decOpenBatch, cat(u16(1), u16(1), item(0, 0, "/")), mal, "reserved"},
		{"open-batch count 0", decOpenBatch, cat(u16(0), u16(0)), mal, "of 0 items"},
		{"open-batch count 0 with an item", decOpenBatch, cat(u16(0), u16(0), item(0, 0, "/")), mal, "of 0 items"},
		{"open-batch count 254", decOpenBatch, cat(u16(protocol.MaxBatch+1), u16(0), item(0, 0, "/")), mal, "of 254 items"},
		{"open-batch count 65535", decOpenBatch, cat(u16(0xffff), u16(0)), mal, "of 65535 items"},
		{"open-batch no items", decOpenBatch, cat(u16(1), u16(0)), mal, "item 0: 0 bytes left"},
		{"open-batch item truncated", decOpenBatch, cat(u16(1), u16(0), u32(0), u32(0), byte(1)), mal, "item 0: 9 bytes left"},
		{"open-batch second item missing", decOpenBatch, cat(u16(2), u16(0), item(0, 0, "/")), mal, "item 1: 0 bytes left"},
		{"open-batch path length 0", decOpenBatch, cat(u16(1), u16(0), u32(0), u32(0), u16(0)), mal, "path of 0 bytes"},
		{"open-batch path over MaxPath", decOpenBatch, cat(u16(1), u16(0), u32(0), u32(0), u16(protocol.MaxPath+1), path(protocol.MaxPath+1)), mal, "path of 4097 bytes"},
		{"open-batch path overrun", decOpenBatch, cat(u16(1), u16(0), u32(0), u32(0), u16(5), "/abc"), mal, "overruns"},
		{"open-batch second path overrun", decOpenBatch, cat(u16(2), u16(0), item(0, 0, "/"), u32(0), u32(0), u16(3), "/"), mal, "item 1: path length 3 overruns"},
		{"open-batch trailing byte", decOpenBatch, cat(u16(1), u16(0), item(0, 0, "/"), byte(0)), mal, "trailing"},
		{"open-batch count 1 with 2 items", decOpenBatch, cat(u16(1), u16(0), item(0, 0, "/"), item(0, 0, "/")), mal, "trailing"},

		// batch-reply: u16 count, u16 reserved, count statuses of 8 bytes
		{"batch-reply empty", decBatchReply, nil, mal, "shorter"},
		{"batch-reply 3 bytes", decBatchReply, cat(u16(1), byte(0)), mal, "shorter"},
		{"batch-reply reserved", decBatchReply, cat(u16(1), u16(0x100), okStatus), mal, "reserved"},
		{"batch-reply count 0", decBatchReply, cat(u16(0), u16(0)), mal, "of 0 items"},
		{"batch-reply count 254", decBatchReply, cat(u16(protocol.MaxBatch+1), u16(0), repeat(0, 8*(protocol.MaxBatch+1))), mal, "of 254 items"},
		{"batch-reply short", decBatchReply, cat(u16(2), u16(0), okStatus), mal, "carries 8 bytes, want 16"},
		{"batch-reply no statuses", decBatchReply, cat(u16(1), u16(0)), mal, "carries 0 bytes, want 8"},
		{"batch-reply trailing byte", decBatchReply, cat(u16(1), u16(0), okStatus, byte(0)), mal, "carries 9 bytes, want 8"},
		{"batch-reply status reserved", decBatchReply, cat(u16(2), u16(0), okStatus, u32(2), u16(3), u16(1)), mal, "item 1"},
		{"batch-reply unknown reason", decBatchReply, cat(u16(1), u16(0), u32(2), u16(10), u16(0)), mal, "unknown reason 10"},
		{"batch-reply ok with errno", decBatchReply, cat(u16(2), u16(0), failStatus, u32(2), u16(0), u16(0)), mal, "item 1: reason 0 with errno 2"},
		{"batch-reply failure without errno", decBatchReply, cat(u16(1), u16(0), u32(0), u16(1), u16(0)), mal, "item 0: reason 1 with errno 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			empty, err := tt.dec(tt.p)
			if err == nil {
				t.Fatalf("got nil error, want one matching %v", tt.is)
			}
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("error %q: got errors.Is(err, %q) false, want true", err, target)
				}
			}
			if !strings.Contains(err.Error(), tt.frag) {
				t.Errorf("error %q: want it to mention %q", err, tt.frag)
			}
			if !empty {
				t.Errorf("error %q came with a non-empty result, want an empty one", err)
			}
		})
	}
}

// TestDecodeAcceptsBoundaries checks the valid side of each limit that
// TestDecodeErrors probes from the invalid side, so that an off-by-one in
// either direction fails one of the two tests.
func TestDecodeAcceptsBoundaries(t *testing.T) {
	tests := []struct {
		name string
		dec  decoder
		p    []byte
	}{
		{"hello no rules", decHello, cat(u16(1), u16(0), u16(0), u16(0))},
		{"hello all flags", decHello, cat(u16(1), u16(protocol.HelloNoOpenat2), u16(0), u16(0))},
		{"hello rule of MaxRule", decHello, cat(u16(1), u16(0), u16(1), u16(0), u16(protocol.MaxRule), repeat('/', protocol.MaxRule))},
		{"hello count = bytes/3", decHello, cat(u16(1), u16(0), u16(2), u16(0), u16(1), "/", u16(1), "/")},
		{"ready pid 1", decReady, cat(u32(1), u16(1), u16(protocol.FeatureOpenat2))},
		{"open 1-byte path", decOpen, cat(u32(0), u32(0), "/")},
		{"open MaxPath path", decOpen, cat(u32(0), u32(0), path(protocol.MaxPath))},
		{"opened", decOpened, nil},
		{"error reason 6", decError, cat(u32(71), u16(6), u16(0))},
		{"error reason 8", decError, cat(u32(13), u16(8), u16(0))},
		{"open-batch MaxPath path", decOpenBatch, cat(u16(1), u16(0), u32(0), u32(0), u16(protocol.MaxPath), path(protocol.MaxPath))},
		{"batch-reply reason 6", decBatchReply, cat(u16(1), u16(0), u32(71), u16(6), u16(0))},
		{"batch-reply 253", decBatchReply, cat(u16(protocol.MaxBatch), u16(0), repeat(0, 8*protocol.MaxBatch))},
	}
	for _, tt := range tests {
		if empty, err := tt.dec(tt.p); err != nil {
			t.Errorf("%s: got error %v, want nil", tt.name, err)
		} else if empty && len(tt.p) > 0 {
			t.Errorf("%s: got an empty result, want the decoded message", tt.name)
		}
	}
}
