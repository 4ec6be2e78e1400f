//go:build linux

package hostile

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/protocol"
)

// RowMarker starts every line that Row logs. scripts/reliability.sh picks
// these lines out of go test -v output; the fields after it are separated by
// tabs: section, test name, case, expected, observed.
const RowMarker = "RELIABILITY"

// Row logs one row of the reliability table: what the case is, what the
// documentation says must happen, and what this run saw. The verdict is the
// test's own (--- PASS or --- FAIL for t.Name()), which the script looks up.
// Tabs and newlines in the fields are replaced by spaces.
func Row(t testing.TB, section, name, expected, observed string) {
	t.Helper()
	clean := func(s string) string {
		return strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s)
	}
	t.Logf("%s\t%s\t%s\t%s\t%s\t%s", RowMarker, clean(section), t.Name(), clean(name), clean(expected), clean(observed))
}

// Errno names an errno the way the tables do: "EPROTO (71)".
func Errno(e syscall.Errno) string {
	if n := unix.ErrnoName(e); n != "" {
		return fmt.Sprintf("%s (%d)", n, int(e))
	}
	return fmt.Sprintf("errno %d", int(e))
}

// Describe summarises a received message for a table: "error id 7:
// protocol, EPROTO (71)", "opened id 3 with 1 fd", "batch-reply id 4: 253
// items, 250 ok, 250 fds".
func Describe(m protocol.Msg) string {
	switch m.Type {
	case protocol.TypeError:
		e, err := protocol.DecodeError(m.Payload)
		if err != nil {
			return fmt.Sprintf("malformed error id %d: %v", m.ID, err)
		}
		return fmt.Sprintf("error id %d: %s, %s", m.ID, reasonName(e.Reason), Errno(syscall.Errno(e.Errno)))
	case protocol.TypeOpened:
		return fmt.Sprintf("opened id %d with %d fd", m.ID, len(m.FDs))
	case protocol.TypeBatchReply:
		st, ok, err := protocol.DecodeBatchReply(m.Payload, nil)
		if err != nil {
			return fmt.Sprintf("malformed batch-reply id %d: %v", m.ID, err)
		}
		return fmt.Sprintf("batch-reply id %d: %d items, %d ok, %d fds", m.ID, len(st), ok, len(m.FDs))
	case protocol.TypeReady:
		return fmt.Sprintf("ready id %d", m.ID)
	case protocol.TypeDirList:
		l, err := protocol.DecodeDirList(m.Payload)
		if err != nil {
			return fmt.Sprintf("malformed dir-list id %d: %v", m.ID, err)
		}
		return fmt.Sprintf("dir-list id %d: %d entries, more %v, %d fds", m.ID, l.Count, l.More, len(m.FDs))
	}
	return fmt.Sprintf("%s id %d", m.Type, m.ID)
}

// reasonName is the short name of a reason used in the tables.
func reasonName(r protocol.Reason) string {
	switch r {
	case protocol.ReasonDenied:
		return "denied"
	case protocol.ReasonBadRequest:
		return "bad request"
	case protocol.ReasonSystem:
		return "system"
	case protocol.ReasonEscape:
		return "escape"
	case protocol.ReasonFileType:
		return "file type"
	case protocol.ReasonProtocol:
		return "protocol"
	case protocol.ReasonLinks:
		return "links"
	case protocol.ReasonLimit:
		return "limit"
	case protocol.ReasonDirectory:
		return "directory"
	}
	return r.String()
}

// ReplyText is the expected-column text for an error reply, in the words
// Describe uses: "error id 7: protocol, EPROTO (71)".
func ReplyText(id uint32, reason protocol.Reason, errno syscall.Errno) string {
	return fmt.Sprintf("error id %d: %s, %s", id, reasonName(reason), Errno(errno))
}
