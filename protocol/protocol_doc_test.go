package protocol_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/privsep-go/privsep/protocol"
)

// docExamples parses the worked examples of PROTOCOL.md: fenced code blocks
// whose info string is "hex NAME". Each line holds two-digit hex bytes
// separated by spaces; "#" starts a comment that runs to the end of the line.
func docExamples(doc []byte) (map[string][]byte, error) {
	examples := map[string][]byte{}
	var name string
	var cur []byte
	in := false
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		trimmed := strings.TrimSpace(text)
		if !in {
			if f := strings.Fields(strings.TrimPrefix(trimmed, "```")); strings.HasPrefix(trimmed, "```") && len(f) > 0 && f[0] == "hex" {
				if len(f) != 2 {
					return nil, fmt.Errorf("line %d: got info string %q, want \"hex NAME\"", line, trimmed)
				}
				name, cur, in = f[1], []byte{}, true
				if _, dup := examples[name]; dup {
					return nil, fmt.Errorf("line %d: example %q appears twice", line, name)
				}
			}
			continue
		}
		if trimmed == "```" {
			examples[name] = cur
			in = false
			continue
		}
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		for _, tok := range strings.Fields(text) {
			b, err := hex.DecodeString(tok)
			if err != nil || len(tok) != 2 {
				return nil, fmt.Errorf("line %d: %q is not one hex byte", line, tok)
			}
			cur = append(cur, b...)
		}
	}
	if in {
		return nil, fmt.Errorf("example %q is not closed", name)
	}
	return examples, sc.Err()
}

// TestProtocolDocExamples keeps PROTOCOL.md honest: each worked example must
// be exactly what the encoders produce for the values the document states.
func TestProtocolDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../PROTOCOL.md")
	if err != nil {
		t.Fatalf("reading the protocol document: %v", err)
	}
	got, err := docExamples(doc)
	if err != nil {
		t.Fatalf("PROTOCOL.md: %v", err)
	}
	must := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// The values below are the ones the document describes in its prose.
	// Flags are Linux x86-64 open(2) values written as literals, so that
	// the test does not depend on the architecture it runs on.
	const (
		oRDONLY    = 0x0
		oNONBLOCK  = 0x800
		oDIRECTORY = 0x10000
		eNOENT     = 2
		eACCES     = 13
		ePROTO     = 71
	)
	want := map[string][]byte{
		"hello": must(protocol.AppendHello(nil, &protocol.Hello{
			Version: protocol.Version,
			Rules:   []string{"/etc/hostname", "r:/srv/www/"},
		})),
		"ready": protocol.AppendReady(nil, protocol.Ready{PID: 4242, Version: protocol.Version, Features: protocol.FeatureOpenat2}),
		"open":  must(protocol.AppendOpen(nil, 1, protocol.Open{Flags: oRDONLY, Path: []byte("/etc/hostname")})),
		"open-directory": must(protocol.AppendOpen(nil, 2, protocol.Open{
			Flags: oRDONLY | oNONBLOCK | oDIRECTORY, Path: []byte("/srv/www"),
		})),
		"opened":         protocol.AppendOpened(nil, 1),
		"error":          protocol.AppendError(nil, 1, protocol.ErrorReply{Errno: eNOENT, Reason: protocol.ReasonSystem}),
		"error-denied":   protocol.AppendError(nil, 3, protocol.ErrorReply{Errno: eACCES, Reason: protocol.ReasonDenied}),
		"error-protocol": protocol.AppendError(nil, 0, protocol.ErrorReply{Errno: ePROTO, Reason: protocol.ReasonProtocol}),
		"hello-server":   must(protocol.AppendHello(nil, &protocol.Hello{Version: protocol.Version})),
		"error-refused":  protocol.AppendError(nil, 0, protocol.ErrorReply{Errno: eACCES, Reason: protocol.ReasonDenied}),
		"open-batch": must(protocol.AppendOpenBatch(nil, 4, []protocol.Open{
			{Flags: oRDONLY, Path: []byte("/etc/hostname")},
			{Flags: oRDONLY, Path: []byte("/srv/www/missing.html")},
		})),
		"batch-reply": must(protocol.AppendBatchReply(nil, 4, []protocol.Status{
			{},
			{Errno: eNOENT, Reason: protocol.ReasonSystem},
		})),
		"listen":          must(protocol.AppendListen(nil, 5, "tcp", ":443")),
		"error-directory": protocol.AppendError(nil, 2, protocol.ErrorReply{Errno: eACCES, Reason: protocol.ReasonDirectory}),
		"readdir":         must(protocol.AppendReadDir(nil, 6, 0, "/srv/www")),
		"broker":          protocol.AppendBroker(nil, 7),
		"broker-ack":      protocol.AppendBrokerAck(nil, 7),
		"dir-list": must(protocol.AppendDirList(nil, 6, 0, false, []protocol.DirEntry{
			{Type: protocol.DirDir, Name: []byte(".")},
			{Type: protocol.DirDir, Name: []byte("..")},
			{Type: protocol.DirReg, Name: []byte("index.html")},
			{Type: protocol.DirDir, Name: []byte("img")},
		})),
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("PROTOCOL.md: example %q is missing", name)
			continue
		}
		if !bytes.Equal(g, w) {
			t.Errorf("PROTOCOL.md example %q:\n got % x\nwant % x", name, g, w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("PROTOCOL.md: example %q is not checked by this test; add it here", name)
		}
	}
	// Every message type has an example.
	seen := map[protocol.Type]bool{}
	for _, b := range got {
		if h, _, err := protocol.ParseHeader(b); err == nil {
			seen[h.Type] = true
		}
	}
	for typ := protocol.TypeHello; typ <= protocol.TypeBrokerAck; typ++ {
		if !seen[typ] {
			t.Errorf("PROTOCOL.md: no example of a %v message", typ)
		}
	}
}

func TestDocExamplesParser(t *testing.T) {
	good := "text\n```hex a\n50 53 # magic\n\n01\n```\n```go\nx\n```\n```hexdump\nzz\n```\n```hex b\n```\n"
	got, err := docExamples([]byte(good))
	if err != nil {
		t.Fatalf("got error %v, want nil", err)
	}
	if len(got) != 2 || !bytes.Equal(got["a"], []byte{0x50, 0x53, 0x01}) || got["b"] == nil || len(got["b"]) != 0 {
		t.Fatalf("got %q, want a = 50 53 01 and an empty b", got)
	}
	for _, bad := range []string{
		"```hex\n00\n```\n",              // no name
		"```hex a b\n00\n```\n",          // two names
		"```hex a\n0\n```\n",             // half a byte
		"```hex a\n000\n```\n",           // three digits
		"```hex a\nzz\n```\n",            // not hex
		"```hex a\n00\n",                 // not closed
		"```hex a\n```\n```hex a\n```\n", // duplicate
	} {
		if _, err := docExamples([]byte(bad)); err == nil {
			t.Errorf("docExamples(%q): got nil error, want one", bad)
		}
	}
}

// TestProtocolDocTables checks the rows of PROTOCOL.md's tables that restate
// constants of this package.
func TestProtocolDocTables(t *testing.T) {
	b, err := os.ReadFile("../PROTOCOL.md")
	if err != nil {
		t.Fatalf("reading the protocol document: %v", err)
	}
	doc := string(b)
	var rows []string
	for _, l := range []struct {
		name string
		v    int
	}{
		{"MaxMessage", protocol.MaxMessage},
		{"MaxPayload", protocol.MaxPayload},
		{"MaxPath", protocol.MaxPath},
		{"MaxRule", protocol.MaxRule},
		{"MaxFDs", protocol.MaxFDs},
		{"MaxBatch", protocol.MaxBatch},
		{"MaxName", protocol.MaxName},
	} {
		rows = append(rows, fmt.Sprintf("| %s | %d |", l.name, l.v))
	}
	for typ := protocol.TypeHello; typ <= protocol.TypeBrokerAck; typ++ {
		rows = append(rows, fmt.Sprintf("| %d | %s |", typ, typ))
	}
	for code := protocol.ExitOK; code <= protocol.ExitProtocol; code++ {
		rows = append(rows, fmt.Sprintf("| %d | %s", code, protocol.ExitStatusText(code)))
	}
	rows = append(rows,
		fmt.Sprintf("`[%q, %q, FD]`", protocol.OpenerArgv0, protocol.OpenerArg),
		fmt.Sprintf("`%s` (required)", protocol.OpenerEnv()),
		fmt.Sprintf("`%s` =", protocol.LogLevelEnv),
		fmt.Sprintf("`HelloNoOpenat2` (`%#04x`)", protocol.HelloNoOpenat2),
		fmt.Sprintf("`HelloBroker` (`%#04x`)", protocol.HelloBroker),
		fmt.Sprintf("`HelloBrokerOnly` (`%#04x`)", protocol.HelloBrokerOnly),
		fmt.Sprintf("`FeatureOpenat2` (`%#04x`)", protocol.FeatureOpenat2),
	)
	for _, r := range rows {
		if !strings.Contains(doc, r) {
			t.Errorf("PROTOCOL.md: got no %q, want it (the constant changed or the document did)", r)
		}
	}
}

func TestExitStatusText(t *testing.T) {
	for code, want := range map[int]string{
		0: "end of stream", 1: "internal error", 2: "bad invocation", 3: "protocol violation", 4: "unknown status", -1: "unknown status",
	} {
		if got := protocol.ExitStatusText(code); got != want {
			t.Errorf("ExitStatusText(%d): got %q, want %q", code, got, want)
		}
	}
}
