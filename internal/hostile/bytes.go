//go:build linux

package hostile

import (
	"encoding/binary"
	"os"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/protocol"
)

// Message builds a message with a sound header (magic, version 1, reserved
// 0, length = len(payload)) of type t; callers then break the bytes they
// want broken.
func Message(t protocol.Type, id uint32, nfd uint16, payload []byte) []byte {
	b := make([]byte, protocol.HeaderSize, protocol.HeaderSize+len(payload))
	protocol.Header{Type: t, ID: id, Len: uint32(len(payload)), NFD: nfd}.Put(b)
	return append(b, payload...)
}

// SetLen overwrites the header's payload length field of msg.
func SetLen(msg []byte, n uint32) []byte {
	binary.LittleEndian.PutUint32(msg[8:], n)
	return msg
}

// SetNFD overwrites the header's descriptor count of msg.
func SetNFD(msg []byte, n uint16) []byte {
	binary.LittleEndian.PutUint16(msg[12:], n)
	return msg
}

// OpenPayload is the payload of an open request.
func OpenPayload(flags, mode uint32, path []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, flags)
	b = binary.LittleEndian.AppendUint32(b, mode)
	return append(b, path...)
}

// BatchItem is one raw open-batch item; PathLen overrides the length field
// when it is not zero.
type BatchItem struct {
	Flags, Mode uint32
	Path        []byte
	PathLen     uint16
}

// BatchPayload is the payload of an open-batch request with count in its
// count field, whatever len(items) is.
func BatchPayload(count uint16, items []BatchItem) []byte {
	b := binary.LittleEndian.AppendUint16(nil, count)
	b = binary.LittleEndian.AppendUint16(b, 0)
	for _, it := range items {
		b = binary.LittleEndian.AppendUint32(b, it.Flags)
		b = binary.LittleEndian.AppendUint32(b, it.Mode)
		l := it.PathLen
		if l == 0 {
			l = uint16(len(it.Path))
		}
		b = binary.LittleEndian.AppendUint16(b, l)
		b = append(b, it.Path...)
	}
	return b
}

// HelloPayload is a hello payload with the given fields and rules, written
// as they are (no checks).
func HelloPayload(version, flags, count, reserved uint16, rules ...[]byte) []byte {
	b := binary.LittleEndian.AppendUint16(nil, version)
	b = binary.LittleEndian.AppendUint16(b, flags)
	b = binary.LittleEndian.AppendUint16(b, count)
	b = binary.LittleEndian.AppendUint16(b, reserved)
	for _, r := range rules {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(r)))
		b = append(b, r...)
	}
	return b
}

// Rights is the control data carrying fds as SCM_RIGHTS.
func Rights(fds ...int) []byte { return unix.UnixRights(fds...) }

// Credentials is an SCM_CREDENTIALS control message with this process's
// pid, uid and gid.
func Credentials() []byte {
	return unix.UnixCredentials(&unix.Ucred{Pid: int32(os.Getpid()), Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())})
}
