package protocol_test

// The message-building helpers, apart from the socket ones in
// helpers_test.go (Linux-only), so that the encoding tests build everywhere.

import (
	"encoding/binary"
	"fmt"

	"github.com/privsep-go/privsep/protocol"
)

// Little helpers to write payloads field by field.
type (
	u16 uint16
	u32 uint32
	u64 uint64
)

// cat concatenates little-endian fields: u16, u32, u64, byte, string and []byte.
func cat(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch v := p.(type) {
		case u16:
			b = binary.LittleEndian.AppendUint16(b, uint16(v))
		case u32:
			b = binary.LittleEndian.AppendUint32(b, uint32(v))
		case u64:
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		case byte:
			b = append(b, v)
		case string:
			b = append(b, v...)
		case []byte:
			b = append(b, v...)
		default:
			panic(fmt.Sprintf("cat: unsupported %T", p))
		}
	}
	return b
}

// header returns the 16 header bytes for a message.
func header(t protocol.Type, id uint32, payloadLen int, nfd uint16) []byte {
	b := make([]byte, protocol.HeaderSize)
	protocol.Header{Type: t, ID: id, Len: uint32(payloadLen), NFD: nfd}.Put(b)
	return b
}

// message returns a whole message with the given payload.
func message(t protocol.Type, id uint32, nfd uint16, payload []byte) []byte {
	return append(header(t, id, len(payload), nfd), payload...)
}

func repeat(c byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return b
}

// path returns an absolute path of exactly n bytes (n >= 1).
func path(n int) []byte {
	b := repeat('a', n)
	b[0] = '/'
	return b
}
