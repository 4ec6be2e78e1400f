package protocol_test

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/privsep-go/privsep/protocol"
)

// parseAs parses msg, which must be a sound message of the given type, id and
// descriptor count, and returns its payload.
func parseAs(t *testing.T, msg []byte, typ protocol.Type, id uint32, nfd uint16) []byte {
	t.Helper()
	h, p, err := protocol.ParseHeader(msg)
	if err != nil {
		t.Fatalf("ParseHeader: got error %v, want nil", err)
	}
	want := protocol.Header{Type: typ, ID: id, Len: uint32(len(msg) - protocol.HeaderSize), NFD: nfd}
	if h != want {
		t.Fatalf("ParseHeader: got header %+v, want %+v", h, want)
	}
	if !bytes.Equal(p, msg[protocol.HeaderSize:]) {
		t.Fatalf("ParseHeader: got payload %x, want %x", p, msg[protocol.HeaderSize:])
	}
	if len(p) > 0 && &p[0] != &msg[protocol.HeaderSize] {
		t.Fatalf("ParseHeader: payload does not alias the message")
	}
	return p
}

func TestHeaderPutLayout(t *testing.T) {
	b := bytes.Repeat([]byte{0xee}, protocol.HeaderSize+2)
	protocol.Header{Type: protocol.TypeBatchReply, ID: 0x04030201, Len: 0x08070605, NFD: 0x0a09}.Put(b)
	want := []byte{'P', 'S', 1, 7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 0, 0xee, 0xee}
	if !bytes.Equal(b, want) {
		t.Fatalf("Put: got % x, want % x", b, want)
	}
}

func TestHeaderPutShortBufferPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatalf("Put into %d bytes: got no panic, want one", protocol.HeaderSize-1)
		}
	}()
	protocol.Header{}.Put(make([]byte, protocol.HeaderSize-1))
}

func TestHelloRoundTrip(t *testing.T) {
	manyRules := func(n int, l int) []string {
		r := make([]string, n)
		for i := range r {
			s := fmt.Sprintf("/r%d", i)
			if len(s) < l {
				s += strings.Repeat("x", l-len(s))
			}
			r[i] = s[:l]
		}
		return r
	}
	// The most one-byte rules that fit: each takes 3 bytes after the
	// 8-byte fixed part.
	maxOneByte := (protocol.MaxPayload - 8) / 3
	tests := []struct {
		name string
		h    protocol.Hello
	}{
		{"two rules", protocol.Hello{Version: 1, Rules: []string{"/etc/hostname", "r:/srv/www/"}}},
		{"no rules", protocol.Hello{Version: 1, Rules: []string{}}},
		{"flag", protocol.Hello{Version: 1, Flags: protocol.HelloNoOpenat2, Rules: []string{"/"}}},
		{"max rule", protocol.Hello{Version: 1, Rules: []string{strings.Repeat("r", protocol.MaxRule)}}},
		{"bytes are opaque", protocol.Hello{Version: 1, Rules: []string{"\x00\xff\n", "é"}}},
		{"1000 rules", protocol.Hello{Version: 1, Rules: manyRules(1000, 20)}},
		{"most rules", protocol.Hello{Version: 1, Rules: manyRules(maxOneByte, 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := protocol.AppendHello(nil, &tt.h)
			if err != nil {
				t.Fatalf("AppendHello: got error %v, want nil", err)
			}
			wantLen := protocol.HeaderSize + 8
			for _, r := range tt.h.Rules {
				wantLen += 2 + len(r)
			}
			if len(msg) != wantLen {
				t.Fatalf("AppendHello: got %d bytes, want %d", len(msg), wantLen)
			}
			p := parseAs(t, msg, protocol.TypeHello, 0, 0)
			got, err := protocol.DecodeHello(p)
			if err != nil {
				t.Fatalf("DecodeHello: got error %v, want nil", err)
			}
			if !reflect.DeepEqual(got, tt.h) {
				t.Fatalf("DecodeHello: got %+v, want %+v", got, tt.h)
			}
		})
	}
}

func TestReadyRoundTrip(t *testing.T) {
	for _, r := range []protocol.Ready{
		{PID: 1, Version: 1},
		{PID: 4242, Version: 1, Features: protocol.FeatureOpenat2},
		{PID: 0xffffffff, Version: 1, Features: protocol.FeatureOpenat2},
	} {
		msg := protocol.AppendReady(nil, r)
		if len(msg) != protocol.HeaderSize+8 {
			t.Fatalf("AppendReady(%+v): got %d bytes, want %d", r, len(msg), protocol.HeaderSize+8)
		}
		p := parseAs(t, msg, protocol.TypeReady, 0, 0)
		got, err := protocol.DecodeReady(p)
		if err != nil {
			t.Fatalf("DecodeReady(%+v): got error %v, want nil", r, err)
		}
		if got != r {
			t.Fatalf("DecodeReady: got %+v, want %+v", got, r)
		}
	}
}

func TestOpenRoundTrip(t *testing.T) {
	for _, o := range []protocol.Open{
		{Flags: 0, Mode: 0, Path: []byte("/etc/hostname")},
		{Flags: 0x30800, Mode: 0o644, Path: []byte("/")},
		{Flags: 0xffffffff, Mode: 0xffffffff, Path: []byte("x")}, // bytes only: no policy here
		{Flags: 1, Path: []byte("/with\x00nul")},
		{Path: path(protocol.MaxPath)},
	} {
		for _, id := range []uint32{1, 0xdeadbeef} {
			msg, err := protocol.AppendOpen(nil, id, o)
			if err != nil {
				t.Fatalf("AppendOpen(%d bytes): got error %v, want nil", len(o.Path), err)
			}
			if want := protocol.HeaderSize + 8 + len(o.Path); len(msg) != want {
				t.Fatalf("AppendOpen: got %d bytes, want %d", len(msg), want)
			}
			p := parseAs(t, msg, protocol.TypeOpen, id, 0)
			got, err := protocol.DecodeOpen(p)
			if err != nil {
				t.Fatalf("DecodeOpen(%d-byte path): got error %v, want nil", len(o.Path), err)
			}
			if got.Flags != o.Flags || got.Mode != o.Mode || !bytes.Equal(got.Path, o.Path) {
				t.Fatalf("DecodeOpen: got %+v, want %+v", got, o)
			}
			if &got.Path[0] != &p[8] {
				t.Fatalf("DecodeOpen: path does not alias the payload")
			}
		}
	}
}

func TestOpenedRoundTrip(t *testing.T) {
	msg := protocol.AppendOpened(nil, 77)
	if len(msg) != protocol.HeaderSize {
		t.Fatalf("AppendOpened: got %d bytes, want %d", len(msg), protocol.HeaderSize)
	}
	p := parseAs(t, msg, protocol.TypeOpened, 77, 1)
	if err := protocol.DecodeOpened(p); err != nil {
		t.Fatalf("DecodeOpened: got error %v, want nil", err)
	}
}

func TestErrorRoundTrip(t *testing.T) {
	for _, r := range []protocol.Reason{1, 2, 3, 4, 5, 6, 8} {
		for _, errno := range []uint32{2, 13, 71, 0xffffffff} {
			e := protocol.ErrorReply{Errno: errno, Reason: r}
			msg := protocol.AppendError(nil, 9, e)
			if len(msg) != protocol.HeaderSize+8 {
				t.Fatalf("AppendError: got %d bytes, want %d", len(msg), protocol.HeaderSize+8)
			}
			p := parseAs(t, msg, protocol.TypeError, 9, 0)
			got, err := protocol.DecodeError(p)
			if err != nil {
				t.Fatalf("DecodeError(%+v): got error %v, want nil", e, err)
			}
			if got != e {
				t.Fatalf("DecodeError: got %+v, want %+v", got, e)
			}
		}
	}
}

func batchItems(n, pathLen int) []protocol.Open {
	items := make([]protocol.Open, n)
	for i := range items {
		p := path(pathLen)
		copy(p[1:], fmt.Sprint(i))
		items[i] = protocol.Open{Flags: uint32(i), Mode: uint32(n - i), Path: p}
	}
	return items
}

func TestOpenBatchRoundTrip(t *testing.T) {
	// The most MaxPath-long paths one message can carry.
	maxLong := (protocol.MaxPayload - 4) / (10 + protocol.MaxPath)
	tests := []struct {
		name  string
		items []protocol.Open
	}{
		{"1 item", batchItems(1, 13)},
		{"2 items", []protocol.Open{{Path: []byte("/etc/hostname")}, {Flags: 0x10000, Path: []byte("/srv/www/")}}},
		{"253 items", batchItems(protocol.MaxBatch, 40)},
		{"253 one-byte paths", batchItems(protocol.MaxBatch, 1)},
		{fmt.Sprintf("%d max paths", maxLong), batchItems(maxLong, protocol.MaxPath)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := protocol.AppendOpenBatch(nil, 5, tt.items)
			if err != nil {
				t.Fatalf("AppendOpenBatch: got error %v, want nil", err)
			}
			total := 0
			for _, it := range tt.items {
				total += len(it.Path)
			}
			if want := protocol.BatchSize(len(tt.items), total); len(msg) != want {
				t.Fatalf("AppendOpenBatch: got %d bytes, want BatchSize = %d", len(msg), want)
			}
			p := parseAs(t, msg, protocol.TypeOpenBatch, 5, 0)
			// A reused slice with stale contents must be overwritten.
			reuse := make([]protocol.Open, 3, protocol.MaxBatch)
			reuse[0].Path = []byte("stale")
			got, err := protocol.DecodeOpenBatch(p, reuse)
			if err != nil {
				t.Fatalf("DecodeOpenBatch: got error %v, want nil", err)
			}
			if len(got) != len(tt.items) {
				t.Fatalf("DecodeOpenBatch: got %d items, want %d", len(got), len(tt.items))
			}
			if &got[0] != &reuse[:1][0] {
				t.Fatalf("DecodeOpenBatch: did not reuse the slice it was given")
			}
			for i, it := range got {
				w := tt.items[i]
				if it.Flags != w.Flags || it.Mode != w.Mode || !bytes.Equal(it.Path, w.Path) {
					t.Fatalf("DecodeOpenBatch item %d: got %+v, want %+v", i, it, w)
				}
				if cap(it.Path) != len(it.Path) {
					t.Fatalf("DecodeOpenBatch item %d: got path capacity %d, want %d (appending must not overwrite the next item)", i, cap(it.Path), len(it.Path))
				}
			}
		})
	}
}

func TestBatchReplyRoundTrip(t *testing.T) {
	all := func(n int, s protocol.Status) []protocol.Status {
		st := make([]protocol.Status, n)
		for i := range st {
			st[i] = s
		}
		return st
	}
	mixed := make([]protocol.Status, protocol.MaxBatch)
	for i := range mixed {
		if i%3 == 1 {
			mixed[i] = protocol.Status{Errno: uint32(i), Reason: protocol.Reason(1 + i%6)}
		}
	}
	ok := protocol.Status{}
	tests := []struct {
		name   string
		status []protocol.Status
		wantOK int
	}{
		{"1 ok", all(1, ok), 1},
		{"1 error", all(1, protocol.Status{Errno: 2, Reason: protocol.ReasonSystem}), 0},
		{"ok and error", []protocol.Status{ok, {Errno: 2, Reason: protocol.ReasonSystem}}, 1},
		{"253 ok", all(protocol.MaxBatch, ok), protocol.MaxBatch},
		{"253 mixed", mixed, protocol.MaxBatch - (protocol.MaxBatch+1)/3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := protocol.AppendBatchReply(nil, 12, tt.status)
			if err != nil {
				t.Fatalf("AppendBatchReply: got error %v, want nil", err)
			}
			if want := protocol.HeaderSize + 4 + 8*len(tt.status); len(msg) != want {
				t.Fatalf("AppendBatchReply: got %d bytes, want %d", len(msg), want)
			}
			p := parseAs(t, msg, protocol.TypeBatchReply, 12, uint16(tt.wantOK))
			got, n, err := protocol.DecodeBatchReply(p, make([]protocol.Status, 7))
			if err != nil {
				t.Fatalf("DecodeBatchReply: got error %v, want nil", err)
			}
			if n != tt.wantOK {
				t.Fatalf("DecodeBatchReply: got %d ok, want %d", n, tt.wantOK)
			}
			if !reflect.DeepEqual(got, tt.status) {
				t.Fatalf("DecodeBatchReply: got %v, want %v", got, tt.status)
			}
		})
	}
}

// TestAppendKeepsPrefix checks that every encoder appends after what b
// already holds, and that the header lands at the start of the new message.
func TestAppendKeepsPrefix(t *testing.T) {
	prefix := []byte("prefix")
	type enc struct {
		name string
		f    func(b []byte) ([]byte, error)
		typ  protocol.Type
	}
	for _, e := range []enc{
		{"hello", func(b []byte) ([]byte, error) {
			return protocol.AppendHello(b, &protocol.Hello{Version: 1, Rules: []string{"/a"}})
		}, protocol.TypeHello},
		{"ready", func(b []byte) ([]byte, error) {
			return protocol.AppendReady(b, protocol.Ready{PID: 3, Version: 1}), nil
		}, protocol.TypeReady},
		{"open", func(b []byte) ([]byte, error) {
			return protocol.AppendOpen(b, 1, protocol.Open{Path: []byte("/a")})
		}, protocol.TypeOpen},
		{"opened", func(b []byte) ([]byte, error) { return protocol.AppendOpened(b, 1), nil }, protocol.TypeOpened},
		{"error", func(b []byte) ([]byte, error) {
			return protocol.AppendError(b, 1, protocol.ErrorReply{Errno: 2, Reason: 3}), nil
		}, protocol.TypeError},
		{"open-batch", func(b []byte) ([]byte, error) {
			return protocol.AppendOpenBatch(b, 1, []protocol.Open{{Path: []byte("/a")}})
		}, protocol.TypeOpenBatch},
		{"batch-reply", func(b []byte) ([]byte, error) {
			return protocol.AppendBatchReply(b, 1, []protocol.Status{{}})
		}, protocol.TypeBatchReply},
	} {
		alone, err := e.f(nil)
		if err != nil {
			t.Fatalf("%s: got error %v, want nil", e.name, err)
		}
		b, err := e.f(append([]byte(nil), prefix...))
		if err != nil {
			t.Fatalf("%s after a prefix: got error %v, want nil", e.name, err)
		}
		if !bytes.HasPrefix(b, prefix) || !bytes.Equal(b[len(prefix):], alone) {
			t.Fatalf("%s after a prefix: got % x, want %q then % x", e.name, b, prefix, alone)
		}
		if got := protocol.Type(b[len(prefix)+3]); got != e.typ {
			t.Fatalf("%s: got type %v, want %v", e.name, got, e.typ)
		}
	}
}

func TestEncoderErrors(t *testing.T) {
	tooMany := make([]string, 0x10000)
	for i := range tooMany {
		tooMany[i] = "/"
	}
	// Rules that fit one by one but not together.
	big := make([]string, protocol.MaxPayload/protocol.MaxRule+1)
	for i := range big {
		big[i] = strings.Repeat("/", protocol.MaxRule)
	}
	mostOneByte := (protocol.MaxPayload - 8) / 3
	oneTooMany := make([]string, mostOneByte+1)
	for i := range oneTooMany {
		oneTooMany[i] = "/"
	}
	maxLong := (protocol.MaxPayload - 4) / (10 + protocol.MaxPath)
	tests := []struct {
		name string
		f    func(b []byte) ([]byte, error)
	}{
		{"hello with 65536 rules", func(b []byte) ([]byte, error) {
			return protocol.AppendHello(b, &protocol.Hello{Version: 1, Rules: tooMany})
		}},
		{"hello with an empty rule", func(b []byte) ([]byte, error) {
			return protocol.AppendHello(b, &protocol.Hello{Version: 1, Rules: []string{"/a", ""}})
		}},
		{"hello with a rule over MaxRule", func(b []byte) ([]byte, error) {
			return protocol.AppendHello(b, &protocol.Hello{Version: 1, Rules: []string{strings.Repeat("/", protocol.MaxRule+1)}})
		}},
		{"hello over MaxPayload", func(b []byte) ([]byte, error) {
			return protocol.AppendHello(b, &protocol.Hello{Version: 1, Rules: big})
		}},
		{"hello one rule over MaxPayload", func(b []byte) ([]byte, error) {
			return protocol.AppendHello(b, &protocol.Hello{Version: 1, Rules: oneTooMany})
		}},
		{"open with an empty path", func(b []byte) ([]byte, error) {
			return protocol.AppendOpen(b, 1, protocol.Open{})
		}},
		{"open with a path over MaxPath", func(b []byte) ([]byte, error) {
			return protocol.AppendOpen(b, 1, protocol.Open{Path: path(protocol.MaxPath + 1)})
		}},
		{"open-batch of 0 items", func(b []byte) ([]byte, error) {
			return protocol.AppendOpenBatch(b, 1, nil)
		}},
		{"open-batch of 254 items", func(b []byte) ([]byte, error) {
			return protocol.AppendOpenBatch(b, 1, batchItems(protocol.MaxBatch+1, 2))
		}},
		{"open-batch with an empty path", func(b []byte) ([]byte, error) {
			return protocol.AppendOpenBatch(b, 1, []protocol.Open{{Path: []byte("/a")}, {}})
		}},
		{"open-batch with a path over MaxPath", func(b []byte) ([]byte, error) {
			return protocol.AppendOpenBatch(b, 1, []protocol.Open{{Path: path(protocol.MaxPath + 1)}})
		}},
		{"open-batch over MaxPayload", func(b []byte) ([]byte, error) {
			return protocol.AppendOpenBatch(b, 1, batchItems(maxLong+1, protocol.MaxPath))
		}},
		{"batch reply of 0 items", func(b []byte) ([]byte, error) {
			return protocol.AppendBatchReply(b, 1, nil)
		}},
		{"batch reply of 254 items", func(b []byte) ([]byte, error) {
			return protocol.AppendBatchReply(b, 1, make([]protocol.Status, protocol.MaxBatch+1))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("keep")
			b := make([]byte, len(prefix), 1<<20)
			copy(b, prefix)
			got, err := tt.f(b)
			if err == nil {
				t.Fatalf("got nil error and %d bytes, want an error", len(got))
			}
			if !strings.HasPrefix(err.Error(), "protocol: ") {
				t.Errorf("error %q: want it to start with %q", err, "protocol: ")
			}
			if !bytes.Equal(got, prefix) {
				t.Fatalf("got buffer %q after the error, want %q unchanged", got, prefix)
			}
		})
	}
}

func TestBatchSizeMatchesEncoding(t *testing.T) {
	for _, n := range []int{1, 2, 17, protocol.MaxBatch} {
		items := batchItems(n, 3+n%5)
		msg, err := protocol.AppendOpenBatch(nil, 1, items)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := protocol.BatchSize(n, n*(3+n%5)), len(msg); got != want {
			t.Fatalf("BatchSize(%d, %d): got %d, want %d", n, n*(3+n%5), got, want)
		}
	}
}

// TestAppendStringVariants checks that AppendOpenPath and AppendOpenBatchFunc
// build exactly what AppendOpen and AppendOpenBatch build, and fail alike.
func TestAppendStringVariants(t *testing.T) {
	for _, p := range [][]byte{[]byte("/etc/hostname"), []byte("/"), path(protocol.MaxPath), {}, path(protocol.MaxPath + 1)} {
		o := protocol.Open{Flags: 0x20800, Mode: 0o640, Path: p}
		want, wantErr := protocol.AppendOpen([]byte("pre"), 7, o)
		got, err := protocol.AppendOpenPath([]byte("pre"), 7, o.Flags, o.Mode, string(p))
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Errorf("AppendOpenPath(%d-byte path): got %x, %v; want %x, %v", len(p), got, err, want, wantErr)
		}
	}
	for _, items := range [][]protocol.Open{
		batchItems(1, 5),
		batchItems(protocol.MaxBatch, 20),
		nil,
		batchItems(protocol.MaxBatch+1, 2),
		{{Path: []byte("/a")}, {Path: nil}},
		{{Path: path(protocol.MaxPath + 1)}},
		batchItems((protocol.MaxPayload-4)/(10+protocol.MaxPath)+1, protocol.MaxPath),
	} {
		want, wantErr := protocol.AppendOpenBatch([]byte("pre"), 9, items)
		got, err := protocol.AppendOpenBatchFunc([]byte("pre"), 9, len(items), func(i int) (uint32, uint32, string) {
			return items[i].Flags, items[i].Mode, string(items[i].Path)
		})
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Errorf("AppendOpenBatchFunc(%d items): got %d bytes, %v; want %d bytes, %v", len(items), len(got), err, len(want), wantErr)
		}
	}
	// A negative count is refused without calling item.
	got, err := protocol.AppendOpenBatchFunc(nil, 1, -1, func(int) (uint32, uint32, string) {
		t.Fatalf("item called for a batch of -1")
		return 0, 0, ""
	})
	if err == nil || len(got) != 0 {
		t.Errorf("AppendOpenBatchFunc(-1 items): got %d bytes, %v; want an error", len(got), err)
	}
}
