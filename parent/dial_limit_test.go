//go:build linux

package parent_test

import (
	"errors"
	"syscall"
	"testing"

	"github.com/privsep-go/privsep/parent"
	"github.com/privsep-go/privsep/protocol"
)

// TestConnRefusedErrorNamesTheLimit: each refusal a server sends says
// which limit, or which rule, it was.
func TestConnRefusedErrorNamesTheLimit(t *testing.T) {
	for _, tc := range []struct {
		err    parent.ConnRefusedError
		want   string
		denied bool
	}{
		{parent.ConnRefusedError{Reason: protocol.ReasonLimit, Errno: syscall.EUSERS, UID: 1000},
			"the server refused this connection: uid 1000 has as many sessions as the per-uid limit allows (privsep serve --max-sessions-per-uid) (too many users)", false},
		{parent.ConnRefusedError{Reason: protocol.ReasonSystem, Errno: syscall.EUSERS, UID: 1000},
			"the server refused this connection: it is serving as many clients as it may (privsep serve --max-clients) (too many users)", false},
		{parent.ConnRefusedError{Reason: protocol.ReasonDenied, Errno: syscall.EACCES, UID: 1000},
			"the server refused this connection: this user and group may not connect (permission denied)", true},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error():\n got %s\nwant %s", got, tc.want)
		}
		if errors.Is(&tc.err, parent.ErrDenied) != tc.denied {
			t.Errorf("%s: matches ErrDenied %v, want %v", tc.want, !tc.denied, tc.denied)
		}
		if !errors.Is(&tc.err, tc.err.Errno) {
			t.Errorf("%s: does not match its errno", tc.want)
		}
	}
}
