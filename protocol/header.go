package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Limits of the version 1 wire format.
const (
	// Version is the protocol version this package speaks. It is carried in
	// every header and in the hello payload.
	Version = 1

	// HeaderSize is the size of the fixed header that starts every message.
	HeaderSize = 16

	// MaxMessage is the largest message either side sends or accepts, header
	// included. It stays well below the default socket send buffer (about
	// 208 KiB), which bounds a SOCK_SEQPACKET message on Linux.
	MaxMessage = 64 << 10

	// MaxPayload is the largest payload a header may declare.
	MaxPayload = MaxMessage - HeaderSize

	// MaxPath is the longest path a request may carry, in bytes (PATH_MAX
	// including the terminating NUL that the wire format does not carry).
	MaxPath = 4096

	// MaxFDs is the most descriptors one message may carry: the kernel's
	// SCM_MAX_FD.
	MaxFDs = 253

	// MaxBatch is the most items one open-batch request may carry, so that
	// one reply can carry every descriptor.
	MaxBatch = MaxFDs
)

// The two magic bytes that start every message: "PS".
const (
	magic0 = 'P'
	magic1 = 'S'
)

// Type identifies a message.
type Type uint8

// Message types of version 1. Requests go from the parent to the opener,
// replies from the opener to the parent.
const (
	TypeHello      Type = 1  // parent → opener: version, flags and policy; id 0
	TypeReady      Type = 2  // opener → parent: pid, version, features; id 0
	TypeOpen       Type = 3  // parent → opener: one path to open
	TypeOpened     Type = 4  // opener → parent: success, one descriptor
	TypeError      Type = 5  // opener → parent: errno and reason
	TypeOpenBatch  Type = 6  // parent → opener: up to MaxBatch paths
	TypeBatchReply Type = 7  // opener → parent: per-item status and the descriptors
	TypeListen     Type = 8  // parent → opener: create a listening socket; answered by opened or error
	TypeReadDir    Type = 9  // parent → opener: list a directory, from a cookie; answered by dir-list or error
	TypeDirList    Type = 10 // opener → parent: directory entries and the cookie to go on from
	TypeBroker     Type = 11 // parent → opener: a seccomp listener to serve; one descriptor, empty payload; answered by broker-ack or error
	TypeBrokerAck  Type = 12 // opener → parent: the listener is being served; empty payload
)

func (t Type) String() string {
	switch t {
	case TypeHello:
		return "hello"
	case TypeReady:
		return "ready"
	case TypeOpen:
		return "open"
	case TypeOpened:
		return "opened"
	case TypeError:
		return "error"
	case TypeOpenBatch:
		return "open-batch"
	case TypeBatchReply:
		return "batch-reply"
	case TypeListen:
		return "listen"
	case TypeReadDir:
		return "readdir"
	case TypeDirList:
		return "dir-list"
	case TypeBroker:
		return "broker"
	case TypeBrokerAck:
		return "broker-ack"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

func (t Type) known() bool { return t >= TypeHello && t <= TypeBrokerAck }

// ErrMalformed is matched (with errors.Is) by every error that reports a
// message that does not follow the wire format.
var ErrMalformed = errors.New("malformed message")

// ErrUnknownType is matched by errors that report a message type this
// version does not define. Such errors also match ErrMalformed.
var ErrUnknownType = errors.New("unknown message type")

// ErrVersion is matched by errors that report a protocol version this package
// does not speak.
var ErrVersion = errors.New("unsupported protocol version")

func malformed(format string, args ...any) error {
	return fmt.Errorf("protocol: %w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Header is the fixed 16-byte header that starts every message. All integers
// are little-endian.
//
//	offset size field
//	0      2    magic "PS"
//	2      1    version (1)
//	3      1    type
//	4      4    request id
//	8      4    payload length (bytes after the header)
//	12     2    number of descriptors attached (SCM_RIGHTS)
//	14     2    reserved, zero
type Header struct {
	Type Type
	ID   uint32
	Len  uint32 // payload length
	NFD  uint16 // descriptors attached to the message
}

// Put writes h into the first HeaderSize bytes of b.
func (h Header) Put(b []byte) {
	_ = b[HeaderSize-1]
	b[0], b[1], b[2], b[3] = magic0, magic1, Version, byte(h.Type)
	binary.LittleEndian.PutUint32(b[4:], h.ID)
	binary.LittleEndian.PutUint32(b[8:], h.Len)
	binary.LittleEndian.PutUint16(b[12:], h.NFD)
	binary.LittleEndian.PutUint16(b[14:], 0)
}

// SetID writes id into the header of msg, an encoded message, leaving the
// rest as it is. It lets a caller encode a request before it knows the id
// the request goes out under.
func SetID(msg []byte, id uint32) {
	binary.LittleEndian.PutUint32(msg[4:HeaderSize], id)
}

// ParseHeader decodes the header of msg, a whole message as received, and
// checks it against the message's length: the payload length must equal
// len(msg)-HeaderSize exactly. It returns the header and the payload.
//
// An error from ParseHeader means the sender does not speak this protocol
// (or is hostile). The returned header is the zero Header on every error but
// one: when the only fault is an unknown type (the error matches
// [ErrUnknownType]), the header is filled in so that the request id can be
// answered.
func ParseHeader(msg []byte) (Header, []byte, error) {
	if len(msg) < HeaderSize {
		return Header{}, nil, malformed("message of %d bytes is shorter than the %d-byte header", len(msg), HeaderSize)
	}
	if msg[0] != magic0 || msg[1] != magic1 {
		return Header{}, nil, malformed("bad magic %#02x%02x", msg[0], msg[1])
	}
	if msg[2] != Version {
		return Header{}, nil, fmt.Errorf("protocol: %w %d (this side speaks %d)", ErrVersion, msg[2], Version)
	}
	h := Header{
		Type: Type(msg[3]),
		ID:   binary.LittleEndian.Uint32(msg[4:]),
		Len:  binary.LittleEndian.Uint32(msg[8:]),
		NFD:  binary.LittleEndian.Uint16(msg[12:]),
	}
	if r := binary.LittleEndian.Uint16(msg[14:]); r != 0 {
		return Header{}, nil, malformed("reserved header bytes are %#04x, want 0", r)
	}
	if h.Len > MaxPayload {
		return Header{}, nil, malformed("declared payload of %d bytes exceeds the %d-byte limit", h.Len, MaxPayload)
	}
	if got := len(msg) - HeaderSize; uint64(got) != uint64(h.Len) {
		return Header{}, nil, malformed("header declares %d payload bytes, message carries %d", h.Len, got)
	}
	if h.NFD > MaxFDs {
		return Header{}, nil, malformed("header declares %d descriptors, at most %d allowed", h.NFD, MaxFDs)
	}
	if h.Type == 0 {
		// Zero is never a type, and a zero Type is how callers tell an
		// unanswerable header; refuse it like a bad magic.
		return Header{}, nil, malformed("message type 0 is reserved")
	}
	if !h.Type.known() {
		// The header is otherwise sound, so the id is trustworthy enough to
		// answer: return it along with the error.
		return h, nil, fmt.Errorf("protocol: %w: %w %d", ErrMalformed, ErrUnknownType, uint8(h.Type))
	}
	return h, msg[HeaderSize:], nil
}

// appendHeader reserves a header at the end of b; finish fills it in once the
// payload is appended.
func appendHeader(b []byte) []byte {
	var zero [HeaderSize]byte
	return append(b, zero[:]...)
}

// finish writes the header of the message that starts at b[start:].
func finish(b []byte, start int, t Type, id uint32, nfd int) ([]byte, error) {
	n := len(b) - start - HeaderSize
	if n > MaxPayload {
		return b[:start], fmt.Errorf("protocol: %s message payload of %d bytes exceeds the %d-byte limit", t, n, MaxPayload)
	}
	Header{Type: t, ID: id, Len: uint32(n), NFD: uint16(nfd)}.Put(b[start:])
	return b, nil
}

// appendEmpty appends a whole message with an empty payload, whose header
// says it carries nfd descriptors. An empty payload is never over the
// limit, so finish cannot fail.
func appendEmpty(b []byte, t Type, id uint32, nfd int) []byte {
	start := len(b)
	b = appendHeader(b)
	b, _ = finish(b, start, t, id, nfd)
	return b
}
