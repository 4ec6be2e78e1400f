//go:build linux

package protocol

import (
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

// parseRights is tested directly with hand-built control buffers, including
// ones the kernel never writes; no descriptor here is real.
func TestParseRights(t *testing.T) {
	creds := unix.UnixCredentials(&unix.Ucred{Pid: 1})
	badLen := func(l uint64) []byte {
		b := unix.UnixRights(7, 8)
		binary.NativeEndian.PutUint64(b, l) // cmsg_len is the first field
		return b
	}
	join := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	tests := []struct {
		name    string
		oob     []byte
		want    []int
		wantErr bool
	}{
		{"empty", nil, nil, false},
		{"one", unix.UnixRights(5), []int{5}, false},
		{"three", unix.UnixRights(5, 6, 7), []int{5, 6, 7}, false},
		{"two messages", join(unix.UnixRights(5), unix.UnixRights(6, 7)), []int{5, 6, 7}, false},
		{"shorter than a header", make([]byte, unix.SizeofCmsghdr-1), nil, false},
		{"credentials only", creds, nil, true},
		{"credentials then rights", join(creds, unix.UnixRights(5, 6)), []int{5, 6}, true},
		{"rights then credentials", join(unix.UnixRights(5, 6), creds), []int{5, 6}, true},
		{"length below the header", badLen(unix.SizeofCmsghdr - 1), nil, true},
		{"length past the buffer", badLen(uint64(unix.CmsgSpace(8) + 1)), nil, true},
		{"rights then bad length", join(unix.UnixRights(5), badLen(1<<40)), []int{5}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Copy into a fresh buffer: make returns memory aligned for the
			// header, as Recv requires.
			oob := make([]byte, len(tt.oob))
			copy(oob, tt.oob)
			got, err := parseRights(oob, []int{99}[:0])
			if !reflect.DeepEqual(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Errorf("got descriptors %v, want %v", got, tt.want)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error: %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Errorf("error %q: got errors.Is(err, ErrMalformed) false, want true", err)
			}
		})
	}
}

// TestOOBSizeIsCmsgSpace: the constant agrees with the kernel ABI's
// computation, on every architecture the tests run on.
func TestOOBSizeIsCmsgSpace(t *testing.T) {
	if want := unix.CmsgSpace(4 * MaxFDs); OOBSize != want {
		t.Errorf("OOBSize = %d, want unix.CmsgSpace(4*MaxFDs) = %d", OOBSize, want)
	}
}
