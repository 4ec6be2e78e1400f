package protocol

// The open-batch request and its batch-reply (PROTOCOL.md, "open-batch (6)"
// and "batch-reply (7)").

import (
	"encoding/binary"
	"fmt"
)

// AppendOpenBatch appends a whole open-batch request with 1 to MaxBatch items
// to b.
func AppendOpenBatch(b []byte, id uint32, items []Open) ([]byte, error) {
	return appendOpenBatch(b, id, len(items), func(i int) (uint32, uint32, []byte) {
		return items[i].Flags, items[i].Mode, items[i].Path
	})
}

// AppendOpenBatchFunc is AppendOpenBatch for n items that item returns one
// at a time, with the path in a string, so that a caller need not build a
// slice of Open values or copy its paths.
func AppendOpenBatchFunc(b []byte, id uint32, n int, item func(i int) (flags, mode uint32, path string)) ([]byte, error) {
	return appendOpenBatch(b, id, n, item)
}

func appendOpenBatch[P string | []byte](b []byte, id uint32, n int, item func(int) (uint32, uint32, P)) ([]byte, error) {
	if n <= 0 || n > MaxBatch {
		return b, fmt.Errorf("protocol: batch of %d items: want 1 to %d", n, MaxBatch)
	}
	start := len(b)
	b = appendHeader(b)
	b = binary.LittleEndian.AppendUint16(b, uint16(n))
	b = binary.LittleEndian.AppendUint16(b, 0)
	for i := 0; i < n; i++ {
		flags, mode, path := item(i)
		if err := checkPathLen(len(path)); err != nil {
			return b[:start], fmt.Errorf("protocol: batch item %d: %w", i, err)
		}
		b = binary.LittleEndian.AppendUint32(b, flags)
		b = binary.LittleEndian.AppendUint32(b, mode)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(path)))
		b = append(b, path...)
	}
	return finish(b, start, TypeOpenBatch, id, 0)
}

// BatchSize returns the encoded size of an open-batch message (header
// included) holding paths of the given total length, so that callers can
// split batches that would exceed MaxMessage.
func BatchSize(items, pathBytes int) int {
	return HeaderSize + batchFixed + items*itemFixed + pathBytes
}

// DecodeOpenBatch decodes an open-batch payload, appending the items to
// items[:0] so that a caller can reuse one slice. Paths alias p.
func DecodeOpenBatch(p []byte, items []Open) ([]Open, error) {
	items = items[:0]
	if len(p) < batchFixed {
		return items, malformed("open-batch payload of %d bytes is shorter than %d", len(p), batchFixed)
	}
	n := int(binary.LittleEndian.Uint16(p[0:]))
	if r := binary.LittleEndian.Uint16(p[2:]); r != 0 {
		return items, malformed("open-batch reserved field is %#04x, want 0", r)
	}
	if n == 0 || n > MaxBatch {
		return items, malformed("open-batch of %d items: want 1 to %d", n, MaxBatch)
	}
	rest := p[batchFixed:]
	for i := 0; i < n; i++ {
		if len(rest) < itemFixed {
			return items[:0], malformed("open-batch item %d: %d bytes left, want at least %d", i, len(rest), itemFixed)
		}
		it := Open{
			Flags: binary.LittleEndian.Uint32(rest[0:]),
			Mode:  binary.LittleEndian.Uint32(rest[4:]),
		}
		l := int(binary.LittleEndian.Uint16(rest[8:]))
		rest = rest[itemFixed:]
		if err := checkPathLen(l); err != nil {
			return items[:0], malformed("open-batch item %d: %v", i, err)
		}
		if l > len(rest) {
			return items[:0], malformed("open-batch item %d: path length %d overruns the %d bytes left", i, l, len(rest))
		}
		it.Path = rest[:l:l]
		rest = rest[l:]
		items = append(items, it)
	}
	if len(rest) != 0 {
		return items[:0], malformed("open-batch has %d trailing bytes", len(rest))
	}
	return items, nil
}

// AppendBatchReply appends a whole batch reply to b. The message must be sent
// with as many descriptors as statuses with ReasonOK, in the same order.
func AppendBatchReply(b []byte, id uint32, status []Status) ([]byte, error) {
	if len(status) == 0 || len(status) > MaxBatch {
		return b, fmt.Errorf("protocol: batch reply of %d items: want 1 to %d", len(status), MaxBatch)
	}
	start := len(b)
	b = appendHeader(b)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(status)))
	b = binary.LittleEndian.AppendUint16(b, 0)
	nfd := 0
	for _, s := range status {
		if s.Reason == ReasonOK {
			nfd++
		}
		b = appendStatus(b, s)
	}
	return finish(b, start, TypeBatchReply, id, nfd)
}

// DecodeBatchReply decodes a batch reply payload, appending to status[:0].
// It also returns the number of items that succeeded, which must equal the
// number of descriptors attached to the message.
func DecodeBatchReply(p []byte, status []Status) ([]Status, int, error) {
	status = status[:0]
	if len(p) < batchFixed {
		return status, 0, malformed("batch reply payload of %d bytes is shorter than %d", len(p), batchFixed)
	}
	n := int(binary.LittleEndian.Uint16(p[0:]))
	if r := binary.LittleEndian.Uint16(p[2:]); r != 0 {
		return status, 0, malformed("batch reply reserved field is %#04x, want 0", r)
	}
	if n == 0 || n > MaxBatch {
		return status, 0, malformed("batch reply of %d items: want 1 to %d", n, MaxBatch)
	}
	rest := p[batchFixed:]
	if len(rest) != n*statusSize {
		return status, 0, malformed("batch reply of %d items carries %d bytes, want %d", n, len(rest), n*statusSize)
	}
	ok := 0
	for i := 0; i < n; i++ {
		s, err := decodeStatus(rest[i*statusSize:], i)
		if err != nil {
			return status[:0], 0, err
		}
		if (s.Reason == ReasonOK) != (s.Errno == 0) {
			return status[:0], 0, malformed("batch reply item %d: reason %d with errno %d", i, s.Reason, s.Errno)
		}
		if s.Reason == ReasonOK {
			ok++
		}
		status = append(status, s)
	}
	return status, ok, nil
}
