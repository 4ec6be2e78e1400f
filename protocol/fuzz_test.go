package protocol_test

import (
	"bytes"
	"errors"
	"testing"
	"unsafe"

	"github.com/privsep-go/privsep/protocol"
)

// The fuzz targets check properties, not only the absence of panics:
//   - an error matches ErrMalformed or ErrVersion and comes with an empty
//     result;
//   - a decoded message is within the limits of the wire format;
//   - every encoding is canonical, so a decoded message encodes back to the
//     very bytes it was decoded from.
// Seed inputs live in testdata/fuzz/<target>/.

// lastReason is the highest reason the decoders accept.
const lastReason = protocol.ReasonLimit

// checkDecodeErr checks an error returned by a payload decoder.
func checkDecodeErr(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, protocol.ErrMalformed) && !errors.Is(err, protocol.ErrVersion) {
		t.Fatalf("error %q: got neither ErrMalformed nor ErrVersion, want one of them", err)
	}
	if errors.Is(err, protocol.ErrUnknownType) {
		t.Fatalf("payload decoder error %q matches ErrUnknownType, which only ParseHeader reports", err)
	}
}

// refused reports whether a payload decoder refused its input. A refusal
// must be an error checkDecodeErr accepts, and come with nothing: empty
// says whether the decoder's result was the zero value, got is that result
// for the failure message.
func refused(t *testing.T, err error, empty bool, got any) bool {
	t.Helper()
	if err == nil {
		return false
	}
	checkDecodeErr(t, err)
	if !empty {
		t.Fatalf("error %q came with %+v", err, got)
	}
	return true
}

// within reports whether sub lies inside the memory of b.
func within(sub, b []byte) bool {
	if len(sub) == 0 {
		return true
	}
	if len(b) == 0 {
		return false
	}
	s, e := uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&b[len(b)-1]))
	p, q := uintptr(unsafe.Pointer(&sub[0])), uintptr(unsafe.Pointer(&sub[len(sub)-1]))
	return p >= s && q <= e
}

// reencoded compares the payload of msg, as built by an encoder, with the
// payload that was decoded, and returns msg.
func reencoded(t *testing.T, what string, msg []byte, err error, payload []byte) []byte {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: encoding a decoded message: got error %v, want nil", what, err)
	}
	if got := msg[protocol.HeaderSize:]; !bytes.Equal(got, payload) {
		t.Fatalf("%s: re-encoded payload differs:\n got %x\nwant %x", what, got, payload)
	}
	return msg
}

func FuzzParseHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, msg []byte) {
		h, p, err := protocol.ParseHeader(msg)
		if err != nil {
			if errors.Is(err, protocol.ErrUnknownType) {
				// The one error that returns the header: everything but the
				// type must be sound.
				if !errors.Is(err, protocol.ErrMalformed) {
					t.Fatalf("unknown type error %q does not match ErrMalformed", err)
				}
				if h.Type == 0 || (h.Type >= protocol.TypeHello && h.Type <= protocol.TypeBrokerAck) {
					t.Fatalf("ErrUnknownType for type %d, want it only for types 13 to 255", h.Type)
				}
				if p != nil {
					t.Fatalf("ErrUnknownType came with a payload")
				}
				checkHeader(t, h, msg)
				return
			}
			if h != (protocol.Header{}) || p != nil {
				t.Fatalf("error %q came with header %+v and %d payload bytes, want neither", err, h, len(p))
			}
			if !errors.Is(err, protocol.ErrMalformed) && !errors.Is(err, protocol.ErrVersion) {
				t.Fatalf("error %q matches neither ErrMalformed nor ErrVersion", err)
			}
			return
		}
		if h.Type < protocol.TypeHello || h.Type > protocol.TypeBrokerAck {
			t.Fatalf("accepted unknown type %d", h.Type)
		}
		checkHeader(t, h, msg)
		if !bytes.Equal(p, msg[protocol.HeaderSize:]) || !within(p, msg) {
			t.Fatalf("payload is not the rest of the message")
		}
	})
}

// checkHeader checks a header ParseHeader returned for msg.
func checkHeader(t *testing.T, h protocol.Header, msg []byte) {
	t.Helper()
	if len(msg) < protocol.HeaderSize || len(msg) > protocol.MaxMessage {
		t.Fatalf("accepted a message of %d bytes", len(msg))
	}
	if int(h.Len) != len(msg)-protocol.HeaderSize || h.Len > protocol.MaxPayload {
		t.Fatalf("accepted declared length %d for a %d-byte message", h.Len, len(msg))
	}
	if h.NFD > protocol.MaxFDs {
		t.Fatalf("accepted %d descriptors", h.NFD)
	}
	var re [protocol.HeaderSize]byte
	h.Put(re[:])
	if !bytes.Equal(re[:], msg[:protocol.HeaderSize]) {
		t.Fatalf("header re-encodes to % x, want % x", re, msg[:protocol.HeaderSize])
	}
}

func FuzzDecodeHello(f *testing.F) {
	f.Fuzz(func(t *testing.T, p []byte) { checkHello(t, p) })
}

// The check functions below decode a payload, check the result and return
// the message an encoder builds from it (nil if the payload was refused or
// is too long to be a message). Encoders that take an id are given id.

func checkHello(t *testing.T, p []byte) []byte {
	h, err := protocol.DecodeHello(p)
	if refused(t, err, h.Version == 0 && h.Flags == 0 && h.Rules == nil, h) {
		return nil
	}
	if h.Version != protocol.Version || h.Flags&^(protocol.HelloNoOpenat2|protocol.HelloBroker|protocol.HelloBrokerOnly) != 0 || h.Flags&protocol.HelloBrokerOnly != 0 && h.Flags&protocol.HelloBroker == 0 {
		t.Fatalf("accepted version %d, flags %#x", h.Version, h.Flags)
	}
	for i, r := range h.Rules {
		if len(r) == 0 || len(r) > protocol.MaxRule {
			t.Fatalf("rule %d: accepted %d bytes", i, len(r))
		}
	}
	if len(p) > protocol.MaxPayload {
		return nil // too long to be a message; nothing to compare with
	}
	msg, err := protocol.AppendHello(nil, &h)
	return reencoded(t, "hello", msg, err, p)
}

func FuzzDecodeReady(f *testing.F) {
	f.Fuzz(func(t *testing.T, p []byte) { checkReady(t, p) })
}

func checkReady(t *testing.T, p []byte) []byte {
	r, err := protocol.DecodeReady(p)
	if refused(t, err, r == (protocol.Ready{}), r) {
		return nil
	}
	if r.PID == 0 || r.Version != protocol.Version || r.Features&^(protocol.FeatureOpenat2|protocol.FeatureReadDir) != 0 {
		t.Fatalf("accepted %+v", r)
	}
	return reencoded(t, "ready", protocol.AppendReady(nil, r), nil, p)
}

func FuzzDecodeOpen(f *testing.F) {
	f.Fuzz(func(t *testing.T, p []byte) { checkOpen(t, 1, p) })
}

func checkOpen(t *testing.T, id uint32, p []byte) []byte {
	o, err := protocol.DecodeOpen(p)
	if refused(t, err, o.Flags == 0 && o.Mode == 0 && o.Path == nil, o) {
		return nil
	}
	if len(o.Path) == 0 || len(o.Path) > protocol.MaxPath || !within(o.Path, p) {
		t.Fatalf("accepted a path of %d bytes (inside the payload: %v)", len(o.Path), within(o.Path, p))
	}
	msg, err := protocol.AppendOpen(nil, id, o)
	return reencoded(t, "open", msg, err, p)
}

func FuzzDecodeError(f *testing.F) {
	f.Fuzz(func(t *testing.T, p []byte) { checkError(t, 1, p) })
}

func checkError(t *testing.T, id uint32, p []byte) []byte {
	e, err := protocol.DecodeError(p)
	if refused(t, err, e == (protocol.ErrorReply{}), e) {
		return nil
	}
	if e.Errno == 0 || e.Reason == protocol.ReasonOK || e.Reason > lastReason {
		t.Fatalf("accepted %+v", e)
	}
	return reencoded(t, "error", protocol.AppendError(nil, id, e), nil, p)
}

func FuzzDecodeOpenBatch(f *testing.F) {
	f.Fuzz(func(t *testing.T, p []byte) { checkOpenBatch(t, 1, p) })
}

func checkOpenBatch(t *testing.T, id uint32, p []byte) []byte {
	// Offer a slice with stale items to check that it is reset.
	reuse := make([]protocol.Open, 2, 8)
	reuse[0].Path = []byte("stale")
	items, err := protocol.DecodeOpenBatch(p, reuse)
	if refused(t, err, len(items) == 0, items) {
		return nil
	}
	if len(items) == 0 || len(items) > protocol.MaxBatch {
		t.Fatalf("accepted %d items", len(items))
	}
	total := 0
	for i, it := range items {
		if len(it.Path) == 0 || len(it.Path) > protocol.MaxPath || !within(it.Path, p) || cap(it.Path) != len(it.Path) {
			t.Fatalf("item %d: accepted a path of %d bytes, capacity %d (inside the payload: %v)", i, len(it.Path), cap(it.Path), within(it.Path, p))
		}
		total += len(it.Path)
	}
	if got, want := protocol.BatchSize(len(items), total), protocol.HeaderSize+len(p); got != want {
		t.Fatalf("BatchSize: got %d, want %d", got, want)
	}
	if len(p) > protocol.MaxPayload {
		return nil
	}
	msg, err := protocol.AppendOpenBatch(nil, id, items)
	return reencoded(t, "open-batch", msg, err, p)
}

func FuzzDecodeBatchReply(f *testing.F) {
	f.Fuzz(func(t *testing.T, p []byte) { checkBatchReply(t, 1, p) })
}

// batchReplyResult is what DecodeBatchReply returns, for refused's message.
type batchReplyResult struct {
	Status []protocol.Status
	OK     int
}

func checkBatchReply(t *testing.T, id uint32, p []byte) []byte {
	status, ok, err := protocol.DecodeBatchReply(p, make([]protocol.Status, 3))
	if refused(t, err, len(status) == 0 && ok == 0, batchReplyResult{status, ok}) {
		return nil
	}
	if len(status) == 0 || len(status) > protocol.MaxBatch {
		t.Fatalf("accepted %d statuses", len(status))
	}
	n := 0
	for i, s := range status {
		if s.Reason > lastReason || (s.Reason == protocol.ReasonOK) != (s.Errno == 0) {
			t.Fatalf("item %d: accepted %+v", i, s)
		}
		if s.Reason == protocol.ReasonOK {
			n++
		}
	}
	if ok != n || ok > len(status) {
		t.Fatalf("got %d ok of %d items, want %d", ok, len(status), n)
	}
	msg, err := protocol.AppendBatchReply(nil, id, status)
	msg = reencoded(t, "batch-reply", msg, err, p)
	if got := int(msg[12]) | int(msg[13])<<8; got != ok {
		t.Fatalf("re-encoded batch reply declares %d descriptors, want %d", got, ok)
	}
	return msg
}

// FuzzMessage decodes whole messages the way a receiver does: ParseHeader,
// then the decoder for the type.
func FuzzMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, msg []byte) {
		h, p, err := protocol.ParseHeader(msg)
		if err != nil {
			if (h == protocol.Header{}) != !errors.Is(err, protocol.ErrUnknownType) {
				t.Fatalf("error %q came with header %+v", err, h)
			}
			return
		}
		checkHeader(t, h, msg)
		var re []byte // the message re-encoded, nil if refused
		switch h.Type {
		case protocol.TypeHello:
			re = checkHello(t, p)
		case protocol.TypeReady:
			re = checkReady(t, p)
		case protocol.TypeOpen:
			re = checkOpen(t, h.ID, p)
		case protocol.TypeOpened:
			if err := protocol.DecodeOpened(p); err != nil {
				checkDecodeErr(t, err)
				if len(p) == 0 {
					t.Fatalf("empty opened payload refused: %v", err)
				}
			} else if len(p) != 0 {
				t.Fatalf("accepted an opened payload of %d bytes", len(p))
			} else {
				re = protocol.AppendOpened(nil, h.ID)
			}
		case protocol.TypeError:
			re = checkError(t, h.ID, p)
		case protocol.TypeOpenBatch:
			re = checkOpenBatch(t, h.ID, p)
		case protocol.TypeBatchReply:
			re = checkBatchReply(t, h.ID, p)
		case protocol.TypeListen:
			l, err := protocol.DecodeListen(p)
			if err != nil {
				checkDecodeErr(t, err)
				return
			}
			if re, err = protocol.AppendListen(nil, h.ID, l.Network, string(l.Addr)); err != nil {
				t.Fatalf("decoded listen %q %q does not encode: %v", l.Network, l.Addr, err)
			}
		case protocol.TypeReadDir:
			re = checkReadDir(t, h.ID, p)
		case protocol.TypeDirList:
			re = checkDirList(t, h.ID, p)
		case protocol.TypeBroker:
			if err := protocol.DecodeBroker(h, p); err != nil {
				checkDecodeErr(t, err)
				return
			}
			re = protocol.AppendBroker(nil, h.ID)
		case protocol.TypeBrokerAck:
			if err := protocol.DecodeBrokerAck(h, p); err != nil {
				checkDecodeErr(t, err)
				return
			}
			re = protocol.AppendBrokerAck(nil, h.ID)
		default:
			t.Fatalf("ParseHeader accepted type %d", h.Type)
		}
		if re == nil {
			return
		}
		// The decoders do not see the header's id and descriptor count,
		// which a receiver checks against the type (hello and ready carry
		// id 0) and the descriptors that arrived. Where those are the ones
		// the encoder writes, the whole message must come back.
		rh, _, err := protocol.ParseHeader(re)
		if err != nil {
			t.Fatalf("re-encoded %v does not parse: %v", h.Type, err)
		}
		if rh.Type != h.Type || rh.Len != h.Len {
			t.Fatalf("re-encoded header %+v, want type and length of %+v", rh, h)
		}
		if rh.ID == h.ID && rh.NFD == h.NFD && !bytes.Equal(re, msg) {
			t.Fatalf("re-encoded %v differs:\n got % x\nwant % x", h.Type, re, msg)
		}
	})
}
