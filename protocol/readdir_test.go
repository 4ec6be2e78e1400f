package protocol_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/privsep-go/privsep/protocol"
)

func FuzzDecodeReadDir(f *testing.F) {
	f.Fuzz(func(t *testing.T, p []byte) { checkReadDir(t, 1, p) })
}

func checkReadDir(t *testing.T, id uint32, p []byte) []byte {
	r, err := protocol.DecodeReadDir(p)
	if refused(t, err, r.Cookie == 0 && r.Path == nil, r) {
		return nil
	}
	if len(r.Path) == 0 || len(r.Path) > protocol.MaxPath || !within(r.Path, p) || r.Cookie > math.MaxInt64 {
		t.Fatalf("accepted cookie %#x and a path of %d bytes (inside the payload: %v)", r.Cookie, len(r.Path), within(r.Path, p))
	}
	msg, err := protocol.AppendReadDir(nil, id, r.Cookie, string(r.Path))
	return reencoded(t, "readdir", msg, err, p)
}

func FuzzDecodeDirList(f *testing.F) {
	f.Fuzz(func(t *testing.T, p []byte) { checkDirList(t, 1, p) })
}

func checkDirList(t *testing.T, id uint32, p []byte) []byte {
	l, err := protocol.DecodeDirList(p)
	if refused(t, err, l.Count == 0 && l.Cookie == 0 && !l.More, l) {
		return nil
	}
	if l.More && (l.Count == 0 || l.Cookie == 0 || l.Cookie > math.MaxInt64) || !l.More && l.Cookie != 0 {
		t.Fatalf("accepted more=%v with %d entries and cookie %#x", l.More, l.Count, l.Cookie)
	}
	var ents []protocol.DirEntry
	for e := range l.All() {
		if len(e.Name) == 0 || len(e.Name) > protocol.MaxName || bytes.ContainsAny(e.Name, "/\x00") || !within(e.Name, p) {
			t.Fatalf("accepted name %q", e.Name)
		}
		ents = append(ents, e)
	}
	if len(ents) != l.Count {
		t.Fatalf("All yielded %d entries, Count says %d", len(ents), l.Count)
	}
	msg, err := protocol.AppendDirList(nil, id, l.Cookie, l.More, ents)
	return reencoded(t, "dir-list", msg, err, p)
}

func TestReadDirRoundTrip(t *testing.T) {
	for _, c := range []uint64{0, 1, 0x7fffffff, math.MaxInt64} {
		msg, err := protocol.AppendReadDir([]byte("pre"), 5, c, "/srv/www")
		if err != nil {
			t.Fatal(err)
		}
		p := parseAs(t, msg[3:], protocol.TypeReadDir, 5, 0)
		r, err := protocol.DecodeReadDir(p)
		if err != nil || r.Cookie != c || string(r.Path) != "/srv/www" {
			t.Fatalf("DecodeReadDir: got %+v, %v", r, err)
		}
	}
	for _, bad := range []struct {
		cookie uint64
		path   string
	}{{math.MaxInt64 + 1, "/a"}, {0, ""}, {0, "/" + strings.Repeat("a", protocol.MaxPath)}} {
		if msg, err := protocol.AppendReadDir([]byte("pre"), 5, bad.cookie, bad.path); err == nil || string(msg) != "pre" {
			t.Errorf("AppendReadDir(%#x, %d bytes): got %q, %v; want an error and b unchanged", bad.cookie, len(bad.path), msg, err)
		}
	}
}

func TestDirListRoundTrip(t *testing.T) {
	ents := []protocol.DirEntry{
		{Type: protocol.DirDir, Name: []byte(".")},
		{Type: protocol.DirDir, Name: []byte("..")},
		{Type: protocol.DirReg, Name: []byte("index.html")},
		{Type: protocol.DirLink, Name: []byte("\xff\xfe not utf-8")},
		{Type: protocol.DirUnknown, Name: []byte(strings.Repeat("n", protocol.MaxName))},
	}
	for _, more := range []bool{false, true} {
		cookie := uint64(0)
		if more {
			cookie = 0x1234
		}
		msg, err := protocol.AppendDirList(nil, 3, cookie, more, ents)
		if err != nil {
			t.Fatal(err)
		}
		p := parseAs(t, msg, protocol.TypeDirList, 3, 0)
		l, err := protocol.DecodeDirList(p)
		if err != nil || l.More != more || l.Cookie != cookie || l.Count != len(ents) {
			t.Fatalf("DecodeDirList: got %+v, %v", l, err)
		}
		i := 0
		for e := range l.All() {
			if e.Type != ents[i].Type || !bytes.Equal(e.Name, ents[i].Name) {
				t.Errorf("entry %d: got %d %q, want %d %q", i, e.Type, e.Name, ents[i].Type, ents[i].Name)
			}
			i++
		}
	}
	// An empty final listing is a listing of nothing; an empty one that
	// says more would have the parent ask forever.
	if _, err := protocol.AppendDirList(nil, 3, 0, false, nil); err != nil {
		t.Errorf("empty final dir-list: %v", err)
	}
	if _, err := protocol.AppendDirList(nil, 3, 7, true, nil); err == nil {
		t.Errorf("empty dir-list with more: got nil error")
	}
	if _, err := protocol.AppendDirList(nil, 3, 7, false, ents); err == nil {
		t.Errorf("final dir-list with a cookie: got nil error")
	}
	for _, bad := range []protocol.DirEntry{
		{Type: protocol.DirReg, Name: nil},
		{Type: protocol.DirReg, Name: []byte("a/b")},
		{Type: protocol.DirReg, Name: []byte("a\x00")},
		{Type: protocol.DirReg, Name: []byte(strings.Repeat("n", protocol.MaxName+1))},
		{Type: 3, Name: []byte("a")},
	} {
		if _, err := protocol.AppendDirList(nil, 3, 0, false, []protocol.DirEntry{bad}); err == nil || errors.Is(err, protocol.ErrDirListFull) {
			t.Errorf("entry %d %q: got %v, want an error", bad.Type, bad.Name, err)
		}
	}
}

// TestDirListBuilderFull: a reply fills up to MaxMessage and no further,
// and the entry that did not fit leaves it intact.
func TestDirListBuilderFull(t *testing.T) {
	var d protocol.DirListBuilder
	d.Reset([]byte("pre"), 9)
	name := []byte(strings.Repeat("x", 200))
	for {
		err := d.Add(protocol.DirReg, name)
		if errors.Is(err, protocol.ErrDirListFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	n := d.Len()
	msg, err := d.Finish(42, true)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(msg, []byte("pre")) {
		t.Fatalf("Finish lost the prefix")
	}
	msg = msg[3:]
	if len(msg) > protocol.MaxMessage || len(msg)+2+len(name) <= protocol.MaxMessage {
		t.Fatalf("full reply of %d bytes: want at most %d, with no room for another entry", len(msg), protocol.MaxMessage)
	}
	l, err := protocol.DecodeDirList(parseAs(t, msg, protocol.TypeDirList, 9, 0))
	if err != nil || l.Count != n || !l.More || l.Cookie != 42 {
		t.Fatalf("DecodeDirList of a full reply: got %+v, %v; want %d entries", l, err, n)
	}
}

func TestDecodeDirListRefuses(t *testing.T) {
	hdr := func(cookie uint64, count, flags uint16) []byte { return cat(u64(cookie), u16(count), u16(flags)) }
	mal := protocol.ErrMalformed
	for _, c := range []struct {
		name, why string
		p         []byte
	}{
		{"short", "shorter than", hdr(0, 0, 0)[:11]},
		{"unknown flag", "unknown dir-list flags", hdr(0, 0, 2)},
		{"more without entries", "no entry", hdr(5, 0, 1)},
		{"more with a negative cookie", "not a directory offset", cat(hdr(1<<63, 1, 1), []byte{8, 1, 'a'})},
		{"more with cookie 0", "not a directory offset", cat(hdr(0, 1, 1), []byte{8, 1, 'a'})},
		{"final with a cookie", "want 0", cat(hdr(5, 1, 0), []byte{8, 1, 'a'})},
		{"count beyond the entries", "entry 1", cat(hdr(0, 2, 0), []byte{8, 1, 'a'})},
		{"trailing", "trailing", cat(hdr(0, 1, 0), []byte{8, 1, 'a', 'b'})},
		{"name length 0", "name length 0", cat(hdr(0, 1, 0), []byte{8, 0})},
		{"name overruns", "name length 5", cat(hdr(0, 1, 0), []byte{8, 5, 'a'})},
		{"slash", "slash", cat(hdr(0, 1, 0), []byte{8, 3, 'a', '/', 'b'})},
		{"NUL", "NUL", cat(hdr(0, 1, 0), []byte{8, 1, 0})},
		{"type 3", "unknown type 3", cat(hdr(0, 1, 0), []byte{3, 1, 'a'})},
		{"type 14", "unknown type 14", cat(hdr(0, 1, 0), []byte{14, 1, 'a'})},
	} {
		l, err := protocol.DecodeDirList(c.p)
		if !errors.Is(err, mal) || !strings.Contains(err.Error(), c.why) || l.Count != 0 {
			t.Errorf("%s: got %+v, %v; want ErrMalformed saying %q", c.name, l, err, c.why)
		}
	}
	for _, c := range []struct {
		name, why string
		p         []byte
	}{
		{"short", "shorter than", cat(u64(0))[:7]},
		{"no path", "path of 0 bytes", cat(u64(0))},
		{"negative cookie", "not a directory offset", cat(u64(1<<63), "/a")},
	} {
		r, err := protocol.DecodeReadDir(c.p)
		if !errors.Is(err, mal) || !strings.Contains(err.Error(), c.why) || r.Path != nil {
			t.Errorf("readdir %s: got %+v, %v; want ErrMalformed saying %q", c.name, r, err, c.why)
		}
	}
}

func TestDecodeDirListDoesNotAllocate(t *testing.T) {
	msg, err := protocol.AppendDirList(nil, 1, 9, true, []protocol.DirEntry{{Type: protocol.DirReg, Name: []byte("a")}, {Type: protocol.DirDir, Name: []byte("b")}})
	if err != nil {
		t.Fatal(err)
	}
	p := msg[protocol.HeaderSize:]
	n := testing.AllocsPerRun(100, func() {
		l, err := protocol.DecodeDirList(p)
		if err != nil {
			panic(err)
		}
		for range l.All() {
		}
	})
	if n != 0 {
		t.Errorf("DecodeDirList and All: %v allocations, want 0", n)
	}
}
