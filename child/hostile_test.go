//go:build linux

package child_test

// The hostile-input suite of the opener (issue 7, RELIABILITY.md): a raw
// peer (internal/hostile) plays a compromised parent and sends what no
// honest parent would. Each case checks the reaction PROTOCOL.md documents,
// an error reply or exit status 3, and, where the opener goes on, that it
// still serves and holds no more descriptors than before. Each case logs a
// row of the reliability table (hostile.Row).

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/hostile"
	"github.com/privsep-go/privsep/internal/opener"
	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/protocol"
)

const (
	secStream    = "opener: messages that end the session (exit 3)"
	secHandshake = "opener: handshake violations (exit 3)"
	secAnswered  = "opener: malformed requests that are answered"
	secLoad      = "opener: descriptor floods, limits and a stalled peer"
)

// hostileFixture is a directory the hostile cases' opener may read: an
// allowed file, a file with a name that is not UTF-8, and the tree rule.
type hostileFixture struct {
	dir     string // allowed as a tree
	file    string // dir/f, "data"
	nonUTF8 string // dir/"\xff\xfe"
}

func newHostileFixture(t *testing.T) hostileFixture {
	t.Helper()
	dir := t.TempDir()
	f := hostileFixture{dir: dir, file: filepath.Join(dir, "f"), nonUTF8: filepath.Join(dir, "\xff\xfe-name")}
	testutil.Must(t, os.WriteFile(f.file, []byte("data"), 0o644))
	testutil.Must(t, os.WriteFile(f.nonUTF8, []byte("bytes"), 0o644))
	return f
}

func (f hostileFixture) start(t *testing.T) *hostile.Peer {
	t.Helper()
	return hostile.Start(t, f.dir+"/")
}

// startServing starts an opener, checks that it serves (request id 1) and
// returns it with the count of descriptors it holds once serving.
func (f hostileFixture) startServing(t *testing.T) (*hostile.Peer, int) {
	t.Helper()
	p := f.start(t)
	testutil.Must(t, p.Probe(1, f.file))
	return p, p.FDs(-1)
}

func openMsg(id uint32, path string) []byte {
	return hostile.Message(protocol.TypeOpen, id, 0, hostile.OpenPayload(0, 0, []byte(path)))
}

// TestHostileStreamViolations sends, after a good handshake, messages that
// break the framing: the opener must send its last words (error id 0,
// reason protocol) and exit with status 3.
func TestHostileStreamViolations(t *testing.T) {
	fx := newHostileFixture(t)
	open := openMsg(5, fx.file)
	clone := func() []byte { return append([]byte(nil), open...) }
	withVersion := func(v byte) []byte { b := clone(); b[2] = v; return b }
	pipe := testutil.Pipe(t)
	full := make([]byte, protocol.MaxMessage)
	copy(full, open)
	hostile.SetLen(full, 0xffffffff)

	for _, tc := range []struct {
		name  string
		data  []byte
		oob   []byte
		errno syscall.Errno
	}{
		{"zero-length message", []byte{}, nil, unix.EPROTO},
		{"zero-length message carrying a descriptor", []byte{}, hostile.Rights(pipe[0]), unix.EPROTO},
		{"truncated header: 1 byte", open[:1], nil, unix.EPROTO},
		{"truncated header: 8 bytes", open[:8], nil, unix.EPROTO},
		{"truncated header: 15 bytes", open[:15], nil, unix.EPROTO},
		{"truncated header with a descriptor", open[:15], hostile.Rights(pipe[0]), unix.EPROTO},
		{"bad magic", append([]byte("XS"), open[2:]...), nil, unix.EPROTO},
		{"header version 0", withVersion(0), nil, unix.EPROTONOSUPPORT},
		{"header version 2", withVersion(2), nil, unix.EPROTONOSUPPORT},
		{"header version 255", withVersion(255), nil, unix.EPROTONOSUPPORT},
		{"reserved header field 0x0100", func() []byte { b := clone(); b[15] = 1; return b }(), nil, unix.EPROTO},
		{"length overruns the message by 1", hostile.SetLen(clone(), uint32(len(open)-protocol.HeaderSize+1)), nil, unix.EPROTO},
		{"length 1 short of the message", hostile.SetLen(clone(), uint32(len(open)-protocol.HeaderSize-1)), nil, unix.EPROTO},
		{"length 0xffffffff (4 GiB declared)", hostile.SetLen(clone(), 0xffffffff), nil, unix.EPROTO},
		{"length 0xfffffff0 (16 + length wraps to 0)", hostile.SetLen(clone(), 0xfffffff0), nil, unix.EPROTO},
		{"length 65521 (MaxPayload + 1)", hostile.SetLen(clone(), protocol.MaxPayload+1), nil, unix.EPROTO},
		{"4 GiB declared in a full 65536-byte message", full, nil, unix.EPROTO},
		{"header nfd 254", hostile.SetNFD(clone(), 254), nil, unix.EPROTO},
		{"header nfd 65535", hostile.SetNFD(clone(), 0xffff), nil, unix.EPROTO},
		{"type 0", func() []byte { b := clone(); b[3] = 0; return b }(), nil, unix.EPROTO},
		{"message of 65537 bytes (MSG_TRUNC)", hostile.SetLen(make([]byte, protocol.MaxMessage+1), 0), nil, unix.EPROTO},
		{"message of 150000 bytes with a sound header", append(clone(), make([]byte, 150000-len(open))...), nil, unix.EPROTO},
		{"bytes that are not a message", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), nil, unix.EPROTO},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := fx.start(t)
			if tc.name == "message of 65537 bytes (MSG_TRUNC)" {
				copy(tc.data, open[:protocol.HeaderSize])
			}
			expectLastWords(t, p, secStream, tc.name, tc.data, tc.oob, tc.errno)
		})
	}
}

// TestHostileHandshake sends a first message that is not a valid hello.
func TestHostileHandshake(t *testing.T) {
	fx := newHostileFixture(t)
	rule := []byte(fx.dir + "/")
	hello := func(payload []byte) []byte { return hostile.Message(protocol.TypeHello, 0, 0, payload) }
	good := hostile.HelloPayload(1, 0, 1, 0, rule)
	pipe := testutil.Pipe(t)
	batch, err := protocol.AppendOpenBatch(nil, 1, []protocol.Open{{Path: []byte(fx.file)}})
	testutil.Must(t, err)

	for _, tc := range []struct {
		name  string
		data  []byte
		oob   []byte
		errno syscall.Errno
	}{
		{"open before hello", openMsg(1, fx.file), nil, unix.EPROTO},
		{"open-batch before hello", batch, nil, unix.EPROTO},
		{"ready as the first message", protocol.AppendReady(nil, protocol.Ready{PID: 1, Version: 1}), nil, unix.EPROTO},
		{"zero-length first message", []byte{}, nil, unix.EPROTO},
		{"hello with id 7", hostile.Message(protocol.TypeHello, 7, 0, good), nil, unix.EPROTO},
		{"hello with a descriptor attached", hostile.Message(protocol.TypeHello, 0, 1, good), hostile.Rights(pipe[0]), unix.EPROTO},
		{"hello whose header says 1 descriptor, none attached", hostile.Message(protocol.TypeHello, 0, 1, good), nil, unix.EPROTO},
		{"hello header version 2", func() []byte { b := hello(good); b[2] = 2; return b }(), nil, unix.EPROTONOSUPPORT},
		{"hello payload version 2", hello(hostile.HelloPayload(2, 0, 1, 0, rule)), nil, unix.EPROTONOSUPPORT},
		{"hello payload version 0", hello(hostile.HelloPayload(0, 0, 1, 0, rule)), nil, unix.EPROTONOSUPPORT},
		{"hello with an empty payload", hello(nil), nil, unix.EPROTO},
		{"hello payload of 7 bytes", hello(good[:7]), nil, unix.EPROTO},
		{"hello count 65535 with one rule", hello(hostile.HelloPayload(1, 0, 0xffff, 0, rule)), nil, unix.EPROTO},
		{"hello count 2 with one rule", hello(hostile.HelloPayload(1, 0, 2, 0, rule)), nil, unix.EPROTO},
		{"hello rule length overruns the payload", hello(append(hostile.HelloPayload(1, 0, 1, 0), 0xff, 0x00, 'r')), nil, unix.EPROTO},
		{"hello rule of length 0", hello(append(hostile.HelloPayload(1, 0, 1, 0), 0, 0, 'x')), nil, unix.EPROTO},
		{"hello rule of 4353 bytes (MaxRule + 1)", hello(hostile.HelloPayload(1, 0, 1, 0, []byte("/"+strings.Repeat("a", protocol.MaxRule)))), nil, unix.EPROTO},
		{"hello reserved field non-zero", hello(hostile.HelloPayload(1, 0, 1, 1, rule)), nil, unix.EPROTO},
		{"hello unknown flag 0x8000", hello(hostile.HelloPayload(1, 0x8000, 1, 0, rule)), nil, unix.EPROTO},
		{"hello trailing bytes", hello(append(append([]byte(nil), good...), 0)), nil, unix.EPROTO},
		{"hello relative rule", hello(hostile.HelloPayload(1, 0, 1, 0, []byte("etc/passwd"))), nil, unix.EINVAL},
		{"hello rule with a NUL byte", hello(hostile.HelloPayload(1, 0, 1, 0, []byte("/etc/\x00passwd"))), nil, unix.EINVAL},
		{"hello rule with \"..\"", hello(hostile.HelloPayload(1, 0, 1, 0, []byte("/etc/../root/"))), nil, unix.EINVAL},
		{"hello with the same rule twice", hello(hostile.HelloPayload(1, 0, 2, 0, rule, rule)), nil, unix.EINVAL},
		{"hello rule with unknown modes", hello(hostile.HelloPayload(1, 0, 1, 0, []byte("rwxz:/tmp/"))), nil, unix.EINVAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := hostile.Spawn(t, "info")
			expectLastWords(t, p, secHandshake, tc.name, tc.data, tc.oob, tc.errno)
		})
	}
}

// expectLastWords sends data and oob raw and checks that the opener answers
// with one protocol error with errno and id 0, its last words, then exits 3;
// it logs the row in section.
func expectLastWords(t *testing.T, p *hostile.Peer, section, name string, data, oob []byte, errno syscall.Errno) {
	t.Helper()
	p.MustSendRaw(data, oob)
	code, got, msgs, err := p.Finish()
	want := hostile.ReplyText(0, protocol.ReasonProtocol, errno) + ", then exit 3"
	hostile.Row(t, section, name, want, got)
	if err != nil {
		t.Fatal(err)
	}
	if code != protocol.ExitProtocol {
		t.Errorf("got %s, want %s; stderr: %s", got, want, p.Stderr())
	}
	if len(msgs) != 1 {
		t.Errorf("got %s, want exactly the last words %s", got, want)
	} else if _, err := hostile.CheckError(msgs[0], 0, protocol.ReasonProtocol, errno); err != nil {
		t.Errorf("last words: %v", err)
	}
}

// answeredCase is a message the opener must answer and survive.
type answeredCase struct {
	name string
	data []byte
	fds  []int // attached as SCM_RIGHTS (oob wins when set)
	oob  []byte
	id   uint32
	// The expected reply: an error with reason and errno, or check.
	reason protocol.Reason
	errno  syscall.Errno
	check  func(m protocol.Msg) error
	want   string // expected text when check is set
}

// TestHostileAnswered sends malformed or refused requests after a good
// handshake: each gets one reply with its id, and the opener goes on
// serving with the descriptors it had.
func TestHostileAnswered(t *testing.T) {
	fx := newHostileFixture(t)
	pipe := testutil.Pipe(t)
	many := make([]int, protocol.MaxFDs)
	for i := range many {
		many[i] = pipe[i%2]
	}
	open := func(id uint32, path []byte) []byte {
		return hostile.Message(protocol.TypeOpen, id, 0, hostile.OpenPayload(0, 0, path))
	}
	item := func(path string) hostile.BatchItem { return hostile.BatchItem{Path: []byte(path)} }
	items := func(n int, path string) []hostile.BatchItem {
		s := make([]hostile.BatchItem, n)
		for i := range s {
			s[i] = item(path)
		}
		return s
	}
	batch := func(id uint32, count uint16, it []hostile.BatchItem) []byte {
		return hostile.Message(protocol.TypeOpenBatch, id, 0, hostile.BatchPayload(count, it))
	}
	// The largest batch: 253 items whose paths fill the message to 65536
	// bytes exactly.
	fixed := protocol.BatchSize(protocol.MaxBatch, 0)
	per := (protocol.MaxMessage - fixed) / protocol.MaxBatch
	extra := (protocol.MaxMessage - fixed) % protocol.MaxBatch
	var biggest []hostile.BatchItem
	for i := 0; i < protocol.MaxBatch; i++ {
		n := per
		if i < extra {
			n++
		}
		name := fmt.Sprintf("%s/%03d-", fx.dir, i)
		biggest = append(biggest, item(name+strings.Repeat("m", n-len(name))))
	}
	long := fx.dir + "/" + strings.Repeat("a", protocol.MaxPath-len(fx.dir)-1)
	tooLong := long + "a"
	wantOpened := func(m protocol.Msg) error {
		if m.Type != protocol.TypeOpened || len(m.FDs) != 1 {
			return fmt.Errorf("got %s, want opened with 1 fd", hostile.Describe(m))
		}
		return nil
	}
	batchOf := func(n, ok int, errno syscall.Errno) func(m protocol.Msg) error {
		return func(m protocol.Msg) error {
			st, nok, err := protocol.DecodeBatchReply(m.Payload, nil)
			if m.Type != protocol.TypeBatchReply || err != nil || len(st) != n || nok != ok || len(m.FDs) != ok {
				return fmt.Errorf("got %s (%v), want a batch-reply of %d items, %d ok", hostile.Describe(m), err, n, ok)
			}
			for i, s := range st {
				if s.Reason != protocol.ReasonOK && syscall.Errno(s.Errno) != errno {
					return fmt.Errorf("item %d: %+v, want errno %v", i, s, errno)
				}
			}
			return nil
		}
	}
	creds := hostile.Credentials()
	listen := func(id uint32, network byte, reserved byte, addr string) []byte {
		return hostile.Message(protocol.TypeListen, id, 0, append([]byte{network, reserved, 0, 0}, addr...))
	}

	cases := []answeredCase{
		{name: "unknown type 0x80", data: hostile.Message(0x80, 21, 0, []byte("x")), id: 21, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "unknown type 0xff with a descriptor", data: hostile.Message(0xff, 22, 1, nil), fds: pipe[:1], id: 22, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "ready sent as a request", data: hostile.Message(protocol.TypeReady, 23, 0, make([]byte, 8)), id: 23, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "opened sent as a request, with its descriptor", data: protocol.AppendOpened(nil, 24), fds: pipe[:1], id: 24, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "error sent as a request", data: protocol.AppendError(nil, 25, protocol.ErrorReply{Errno: 2, Reason: 3}), id: 25, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "batch-reply sent as a request", data: hostile.Message(protocol.TypeBatchReply, 26, 0, make([]byte, 12)), id: 26, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "second hello (id 0) asking for \"/\"", data: hostile.Message(protocol.TypeHello, 0, 0, hostile.HelloPayload(1, 0, 1, 0, []byte("/"))), id: 0, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "second hello with id 27", data: hostile.Message(protocol.TypeHello, 27, 0, hostile.HelloPayload(1, 0, 1, 0, []byte("/"))), id: 27, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "second hello that is itself malformed", data: hostile.Message(protocol.TypeHello, 28, 0, []byte{1}), id: 28, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "open payload of 7 bytes", data: hostile.Message(protocol.TypeOpen, 31, 0, make([]byte, 7)), id: 31, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "open with an empty path", data: open(32, nil), id: 32, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "open with a 4097-byte path", data: open(33, []byte(tooLong)), id: 33, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "open with a 4096-byte path (component over NAME_MAX)", data: open(34, []byte(long)), id: 34, reason: protocol.ReasonSystem, errno: unix.ENAMETOOLONG},
		{name: "open with a NUL in the path", data: open(35, []byte(fx.file+"\x00/etc/shadow")), id: 35, reason: protocol.ReasonBadRequest, errno: unix.EINVAL},
		{name: "open of a path that is only a NUL", data: open(36, []byte{0}), id: 36, reason: protocol.ReasonBadRequest, errno: unix.EINVAL},
		{name: "open of an existing file whose name is not UTF-8", data: open(37, []byte(fx.nonUTF8)), id: 37, check: wantOpened, want: "opened id 37 with 1 fd"},
		{name: "open of a missing file whose name is not UTF-8", data: open(38, []byte(fx.dir+"/\xc3\x28\xff")), id: 38, reason: protocol.ReasonSystem, errno: unix.ENOENT},
		{name: "open of a relative path", data: open(39, []byte("etc/hostname")), id: 39, reason: protocol.ReasonBadRequest, errno: unix.EINVAL},
		{name: "open of a path with \"//\"", data: open(40, []byte(fx.dir+"//f")), id: 40, reason: protocol.ReasonBadRequest, errno: unix.EINVAL},
		{name: "open of a path with \"..\" back into the tree", data: open(41, []byte(fx.dir+"/../"+filepath.Base(fx.dir)+"/f")), id: 41, reason: protocol.ReasonBadRequest, errno: unix.EINVAL},
		{name: "open with flags 0xffffffff", data: hostile.Message(protocol.TypeOpen, 42, 0, hostile.OpenPayload(0xffffffff, 0, []byte(fx.file))), id: 42, reason: protocol.ReasonBadRequest, errno: unix.EINVAL},
		{name: "open with mode 0xffffffff and no O_CREAT (mode ignored)", data: hostile.Message(protocol.TypeOpen, 43, 0, hostile.OpenPayload(0, 0xffffffff, []byte(fx.file))), id: 43, check: wantOpened, want: "opened id 43 with 1 fd"},
		{name: "open outside the policy", data: open(44, []byte("/etc/passwd")), id: 44, reason: protocol.ReasonDenied, errno: unix.EACCES},
		{name: "open-batch count 0", data: batch(51, 0, nil), id: 51, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "open-batch of 254 items", data: batch(52, 254, items(254, fx.file)), id: 52, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "open-batch count 2 with 1 item", data: batch(53, 2, items(1, fx.file)), id: 53, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "open-batch item path length overruns", data: batch(54, 1, []hostile.BatchItem{{Path: []byte(fx.file), PathLen: 0xffff}}), id: 54, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "open-batch item path length 0", data: hostile.Message(protocol.TypeOpenBatch, 55, 0, append(hostile.BatchPayload(1, nil), make([]byte, 10)...)), id: 55, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "open-batch item with a 4097-byte path", data: batch(56, 1, items(1, tooLong)), id: 56, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "open-batch with trailing bytes", data: hostile.Message(protocol.TypeOpenBatch, 57, 0, append(hostile.BatchPayload(1, items(1, fx.file)), 0)), id: 57, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "open-batch reserved field non-zero", data: func() []byte { b := batch(58, 1, items(1, fx.file)); b[protocol.HeaderSize+2] = 1; return b }(), id: 58, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "open-batch of 253 items", data: batch(59, 253, items(253, fx.file)), id: 59, check: batchOf(253, 253, 0), want: "batch-reply id 59: 253 items, 253 ok, 253 fds"},
		{name: "open-batch of 253 items filling 65536 bytes", data: batch(60, 253, biggest), id: 60, check: batchOf(253, 0, unix.ENOENT), want: "batch-reply id 60: 253 items, 0 ok (ENOENT each), 0 fds"},
		{name: "open with 1 descriptor attached", data: hostile.SetNFD(openMsg(61, fx.file), 1), fds: pipe[:1], id: 61, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "open with 253 descriptors attached", data: hostile.SetNFD(openMsg(62, fx.file), 253), fds: many, id: 62, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "open: header nfd 2, 1 descriptor attached", data: hostile.SetNFD(openMsg(63, fx.file), 2), fds: pipe[:1], id: 63, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "open: header nfd 0, 1 descriptor attached", data: openMsg(64, fx.file), fds: pipe[:1], id: 64, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "open: header nfd 1, no descriptor attached", data: hostile.SetNFD(openMsg(65, fx.file), 1), id: 65, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "open-batch with 2 descriptors attached", data: hostile.SetNFD(batch(66, 1, items(1, fx.file)), 2), fds: pipe, id: 66, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "malformed open with a descriptor attached", data: hostile.SetNFD(hostile.Message(protocol.TypeOpen, 67, 0, make([]byte, 3)), 1), fds: pipe[:1], id: 67, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "open with an extra SCM_CREDENTIALS control message",
			data: openMsg(71, fx.file), oob: creds, id: 71, check: wantOpened,
			want: "the kernel drops SCM_CREDENTIALS (no SO_PASSCRED): opened id 71 with 1 fd"},
		{name: "open with SCM_CREDENTIALS and SCM_RIGHTS",
			data: hostile.SetNFD(openMsg(72, fx.file), 1), oob: append(append([]byte(nil), creds...), hostile.Rights(pipe[0])...), id: 72,
			reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "listen with network code 0", data: listen(81, 0, 0, ":443"), id: 81, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "listen with network code 8", data: listen(82, 8, 0, ":443"), id: 82, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "listen with network code 255", data: listen(83, 255, 0, ":443"), id: 83, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "listen with a reserved byte set", data: listen(84, 1, 1, ":443"), id: 84, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "listen with an empty address", data: listen(85, 1, 0, ""), id: 85, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "listen with a 4097-byte address", data: listen(86, 7, 0, tooLong), id: 86, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "listen payload of 3 bytes", data: hostile.Message(protocol.TypeListen, 87, 0, []byte{1, 0, 0}), id: 87, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "listen on tcp :443 with no listen rule", data: listen(88, 1, 0, ":443"), id: 88, reason: protocol.ReasonDenied, errno: unix.EACCES},
		{name: "listen on a host name (tcp localhost:80)", data: listen(89, 1, 0, "localhost:80"), id: 89, reason: protocol.ReasonBadRequest, errno: unix.EINVAL},
		{name: "listen on a unix path with a NUL", data: listen(90, 7, 0, fx.dir+"/s\x00ck"), id: 90, reason: protocol.ReasonBadRequest, errno: unix.EINVAL},
		{name: "listen with a descriptor attached", data: hostile.SetNFD(listen(91, 1, 0, ":443"), 1), fds: pipe[:1], id: 91, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
		{name: "open with id 0", data: openMsg(0, fx.file), id: 0, reason: protocol.ReasonProtocol, errno: unix.EPROTO},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := fx.start(t)
			if err := p.Probe(1000, fx.file); err != nil {
				t.Fatal(err)
			}
			before := p.FDs(-1)
			oob := tc.oob
			if oob == nil && len(tc.fds) > 0 {
				oob = hostile.Rights(tc.fds...)
			}
			p.MustSendRaw(tc.data, oob)
			m, err := p.Recv(hostile.Timeout)
			var got string
			if err != nil {
				got = "no reply: " + err.Error()
				if code, how, _, _ := p.Finish(); code >= 0 {
					got += ", " + how
				}
			} else {
				got = hostile.Describe(m)
			}
			want := tc.want
			if tc.check == nil {
				want = hostile.ReplyText(tc.id, tc.reason, tc.errno)
			}
			var fail []string
			if err == nil {
				if tc.check != nil {
					if m.ID != tc.id {
						fail = append(fail, fmt.Sprintf("reply id %d, want %d", m.ID, tc.id))
					}
					if cerr := tc.check(m); cerr != nil {
						fail = append(fail, cerr.Error())
					}
					protocol.CloseFDs(m.FDs)
				} else if _, cerr := hostile.CheckError(m, tc.id, tc.reason, tc.errno); cerr != nil {
					fail = append(fail, cerr.Error())
				}
			} else {
				fail = append(fail, got)
			}
			after := -1
			if err == nil {
				if perr := p.Probe(1001, fx.file); perr != nil {
					fail = append(fail, perr.Error())
				}
				if tc.name == "second hello (id 0) asking for \"/\"" {
					// The policy is unchanged.
					fd, e := p.Open(1002, "/etc/passwd", 0)
					if fd >= 0 || e.Reason != protocol.ReasonDenied {
						unix.Close(fd)
						fail = append(fail, "after a second hello asking for /, /etc/passwd was not denied")
					}
				}
				after = p.FDs(before)
				if after != before {
					fail = append(fail, fmt.Sprintf("opener descriptors %d before, %d after: %s", before, after, testutil.FDList(p.PID())))
				}
			}
			hostile.Row(t, secAnswered, tc.name, want+"; serves on; fds unchanged",
				fmt.Sprintf("%s; probe served; fds %d→%d", got, before, after))
			for _, f := range fail {
				t.Error(f)
			}
			if t.Failed() {
				t.Logf("opener stderr: %s", p.Stderr())
			}
		})
	}
}

// TestHostileDescriptorFlood attaches a descriptor to more requests than the
// opener's RLIMIT_NOFILE allows it to hold: it must close each on arrival,
// refuse each request, and serve afterwards with the descriptors it had.
func TestHostileDescriptorFlood(t *testing.T) {
	fx := newHostileFixture(t)
	p := fx.start(t)
	pid := p.PID()
	soft, hard, err := hostile.NoFileLimit(pid)
	testutil.Must(t, err)
	limit := soft
	note := ""
	if limit > 1<<16 {
		// Keep the run bounded: lower the soft limit first (the point is
		// to go past it, whatever it is).
		limit = 1 << 16
		testutil.Must(t, unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: limit, Max: hard}, nil))
		note = fmt.Sprintf(" (soft limit %d lowered to %d with prlimit)", soft, limit)
	}
	testutil.Must(t, p.Probe(1, fx.file))
	before := p.FDs(-1)
	pipe := testutil.Pipe(t)

	// Pipelined: keep a window of requests in flight.
	total := int(limit) + 64
	const window = 32
	sent, got, bad := 0, 0, 0
	var firstBad string
	begin := time.Now()
	for got < total {
		for sent < total && sent-got < window {
			sent++
			msg := hostile.SetNFD(openMsg(uint32(sent), fx.file), 1)
			if err := p.SendRaw(msg, hostile.Rights(pipe[sent%2]), 0); err != nil {
				t.Fatalf("request %d: %v", sent, err)
			}
		}
		m, err := p.Recv(hostile.Timeout)
		if err != nil {
			t.Fatalf("after %d replies: %v; stderr: %s", got, err, p.Stderr())
		}
		got++
		if _, err := hostile.CheckError(m, m.ID, protocol.ReasonProtocol, unix.EPROTO); err != nil {
			bad++
			if firstBad == "" {
				firstBad = err.Error()
			}
		}
	}
	floodVerdict(t, p, fx.file, uint32(total+1), before, begin,
		fmt.Sprintf("%d requests each carrying a descriptor, RLIMIT_NOFILE %d%s", total, limit, note),
		"each: error, protocol, EPROTO (71), descriptor closed; then serves; fds unchanged",
		got-bad, total, firstBad)

	// The same with 253 descriptors a message, until more descriptors than
	// the limit have passed through.
	n := int(limit)/protocol.MaxFDs + 2
	many := make([]int, protocol.MaxFDs)
	for i := range many {
		many[i] = pipe[i%2]
	}
	bad, firstBad = 0, ""
	begin = time.Now()
	for i := 0; i < n; i++ {
		id := uint32(100000 + i)
		p.MustSendRaw(hostile.SetNFD(openMsg(id, fx.file), protocol.MaxFDs), hostile.Rights(many...))
		if _, err := hostile.CheckError(p.Reply(), id, protocol.ReasonProtocol, unix.EPROTO); err != nil {
			bad++
			if firstBad == "" {
				firstBad = err.Error()
			}
		}
	}
	floodVerdict(t, p, fx.file, 3, before, begin,
		fmt.Sprintf("%d requests each carrying 253 descriptors (%d in all)", n, n*protocol.MaxFDs),
		"each: error, protocol, EPROTO (71), descriptors closed; then serves; fds unchanged",
		n-bad, n, firstBad)
}

// floodVerdict ends a flood begun at begin in which ok of n requests were
// answered with EPROTO (firstBad: what the first other answer was): it
// probes that the opener still serves (request id probeID), logs the row,
// and fails unless every answer was EPROTO, the probe worked and the
// opener holds the before descriptors it held.
func floodVerdict(t *testing.T, p *hostile.Peer, file string, probeID uint32, before int, begin time.Time, name, want string, ok, n int, firstBad string) {
	t.Helper()
	elapsed := time.Since(begin)
	probeErr := p.Probe(probeID, file)
	after := p.FDs(before)
	hostile.Row(t, secLoad, name, want,
		fmt.Sprintf("%d/%d answered with EPROTO in %v; probe %v; fds %d→%d", ok, n, elapsed.Round(time.Millisecond), okText(probeErr), before, after))
	if bad := n - ok; bad > 0 {
		t.Errorf("%d replies were not EPROTO errors; first: %s", bad, firstBad)
	}
	if probeErr != nil {
		t.Error(probeErr)
	}
	if after != before {
		t.Errorf("opener descriptors: %d before, %d after", before, after)
	}
}

func okText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// TestHostileOpenerAtFDLimit lowers the opener's RLIMIT_NOFILE (prlimit(2)
// on its pid) to the descriptors it holds: an open fails with EMFILE as a
// system error, descriptors attached to a request are dropped by the kernel
// (MSG_CTRUNC) and answered with EMFILE, and once the limit is raised again
// the opener serves as before.
func TestHostileOpenerAtFDLimit(t *testing.T) {
	fx := newHostileFixture(t)
	p, before := fx.startServing(t)
	pid := p.PID()
	var old unix.Rlimit
	testutil.Must(t, unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &old))
	free, err := hostile.LowestFreeFD(pid)
	testutil.Must(t, err)
	testutil.Must(t, unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: uint64(free), Max: old.Max}, nil))
	limitText := fmt.Sprintf("soft limit %d = the opener's lowest free descriptor", free)

	fd, e := p.Open(2, fx.file, 0)
	got := hostile.ReplyText(2, e.Reason, syscall.Errno(e.Errno))
	if fd >= 0 {
		unix.Close(fd)
		got = "opened"
	}
	want := hostile.ReplyText(2, protocol.ReasonSystem, unix.EMFILE)
	hostile.Row(t, secLoad, "open at the opener's RLIMIT_NOFILE ("+limitText+")", want, got)
	if got != want {
		t.Errorf("open at the limit: got %s, want %s", got, want)
	}

	pipe := testutil.Pipe(t)
	p.MustSendRaw(hostile.SetNFD(openMsg(3, fx.file), 2), hostile.Rights(pipe...))
	got, err = hostile.CheckError(p.Reply(), 3, protocol.ReasonSystem, unix.EMFILE)
	hostile.Row(t, secLoad, "descriptors attached to a request at the opener's limit (MSG_CTRUNC)",
		hostile.ReplyText(3, protocol.ReasonSystem, unix.EMFILE), got)
	if err != nil {
		t.Error(err)
	}

	msg, err := protocol.AppendOpenBatch(nil, 4, []protocol.Open{{Path: []byte(fx.file)}, {Path: []byte(fx.file)}, {Path: []byte(fx.dir + "/missing")}})
	testutil.Must(t, err)
	p.MustSend(msg, nil)
	m := p.Reply()
	protocol.CloseFDs(m.FDs)
	st, ok, derr := protocol.DecodeBatchReply(m.Payload, nil)
	got = hostile.Describe(m)
	if derr == nil && len(st) == 3 {
		got += fmt.Sprintf(" (%s, %s, %s)", hostile.Errno(syscall.Errno(st[0].Errno)), hostile.Errno(syscall.Errno(st[1].Errno)), hostile.Errno(syscall.Errno(st[2].Errno)))
	}
	hostile.Row(t, secLoad, "open-batch of 3 at the opener's limit", "batch-reply id 4: 3 items, 0 ok, 0 fds (EMFILE (24), EMFILE (24), EMFILE or ENOENT)", got)
	if m.Type != protocol.TypeBatchReply || derr != nil || ok != 0 || len(st) != 3 ||
		syscall.Errno(st[0].Errno) != unix.EMFILE || syscall.Errno(st[1].Errno) != unix.EMFILE {
		t.Errorf("batch at the limit: got %s", got)
	}

	testutil.Must(t, unix.Prlimit(pid, unix.RLIMIT_NOFILE, &old, nil))
	probeErr := p.Probe(5, fx.file)
	after := p.FDs(before)
	hostile.Row(t, secLoad, "limit raised again", "opened; fds unchanged", fmt.Sprintf("probe %s; fds %d→%d", okText(probeErr), before, after))
	if probeErr != nil {
		t.Error(probeErr)
	}
	if after != before {
		t.Errorf("opener descriptors: %d before, %d after", before, after)
	}
}

// TestHostileStalledPeer sends requests and reads no replies. The opener's
// replies fill the parent's receive queue, its workers block sending
// (opener.DefaultWorkers of them, each handing the receiving role on after
// opener.StallAfter), its own receive queue fills, and the peer's sends
// block. Nothing is lost: once the peer drains, every request is answered
// exactly once, and the opener holds what it held before.
func TestHostileStalledPeer(t *testing.T) {
	fx := newHostileFixture(t)
	p, before := fx.startServing(t)
	pid := p.PID()

	sent := 0
	begin := time.Now()
	lastSend := begin
	for {
		msg := openMsg(uint32(sent+100), fx.file)
		err := p.SendRaw(msg, nil, unix.MSG_DONTWAIT)
		if err == nil {
			sent++
			lastSend = time.Now()
			if sent > 1<<20 {
				t.Fatal("a million requests accepted without the peer reading: no back-pressure")
			}
			continue
		}
		if err != unix.EAGAIN {
			t.Fatalf("send %d: %v", sent, err)
		}
		// Full for now; the opener may still be taking requests.
		pfd := []unix.PollFd{{Fd: int32(p.Sock), Events: unix.POLLOUT}}
		n, _ := unix.Poll(pfd, 200)
		if n == 0 {
			break
		}
	}
	stallAt := lastSend.Sub(begin)
	// The workers that blocked sending each hold the descriptor they could
	// not send yet.
	during := p.FDs(-1)
	cpu0, err := hostile.CPUTicks(pid)
	testutil.Must(t, err)
	time.Sleep(500 * time.Millisecond)
	cpu1, err := hostile.CPUTicks(pid)
	testutil.Must(t, err)
	blocked := during - before

	// Drain: every request answered exactly once, in whatever order.
	seen := make(map[uint32]int, sent)
	dup, bad := 0, 0
	for len(seen) < sent {
		m, err := p.Recv(hostile.Timeout)
		if err != nil {
			t.Fatalf("after %d of %d replies: %v", len(seen), sent, err)
		}
		if m.Type != protocol.TypeOpened || len(m.FDs) != 1 {
			bad++
		}
		protocol.CloseFDs(m.FDs)
		if seen[m.ID]++; seen[m.ID] > 1 {
			dup++
		}
	}
	if m, err := p.Recv(100 * time.Millisecond); err != hostile.ErrTimeout {
		t.Errorf("after the drain: got %s, %v; want nothing more", hostile.Describe(m), err)
	}
	probeErr := p.Probe(2, fx.file)
	after := p.FDs(before)
	hostile.Row(t, secLoad, "peer stops reading replies",
		fmt.Sprintf("back-pressure: the peer's sends block; at most %d workers blocked (opener.DefaultWorkers), each handing on after %v; no CPU spent while stalled; all answered once after the drain; fds unchanged", opener.DefaultWorkers, opener.StallAfter),
		fmt.Sprintf("%d requests accepted in %v before the peer's send blocked for good; %d workers blocked holding a descriptor; opener CPU while stalled %d ticks in 500ms; %d answered, %d duplicates, %d not opened; probe %s; fds %d→%d",
			sent, stallAt.Round(time.Millisecond), blocked, cpu1-cpu0, len(seen), dup, bad, okText(probeErr), before, after))
	if blocked < 1 || blocked > opener.DefaultWorkers {
		t.Errorf("%d workers blocked in send, want 1 to %d", blocked, opener.DefaultWorkers)
	}
	if cpu1-cpu0 > 5 {
		t.Errorf("the stalled opener used %d clock ticks in 500ms: busy waiting?", cpu1-cpu0)
	}
	if dup > 0 || bad > 0 {
		t.Errorf("%d duplicate replies, %d replies that are not opened", dup, bad)
	}
	if probeErr != nil {
		t.Error(probeErr)
	}
	if after != before {
		t.Errorf("opener descriptors: %d before, %d after", before, after)
	}
	if !bytes.Contains([]byte(p.Stderr()), []byte("ready")) {
		t.Logf("opener stderr: %s", p.Stderr())
	}
}

// TestHostileCredentialsArrive documents what an extra SCM_CREDENTIALS
// control message turns into on the opener's socket: nothing, because the
// opener does not set SO_PASSCRED. A socket pair we control shows it.
func TestHostileCredentialsArrive(t *testing.T) {
	a, b, err := protocol.Socketpair()
	testutil.Must(t, err)
	defer unix.Close(a)
	defer unix.Close(b)
	check := func(passcred bool) string {
		if passcred {
			testutil.Must(t, unix.SetsockoptInt(b, unix.SOL_SOCKET, unix.SO_PASSCRED, 1))
		}
		testutil.Must(t, hostile.SendRaw(a, openMsg(1, "/x"), hostile.Credentials(), 0))
		buf, oob := make([]byte, protocol.MaxMessage), make([]byte, protocol.OOBSize)
		_, oobn, _, _, err := unix.Recvmsg(b, buf, oob, 0)
		testutil.Must(t, err)
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		testutil.Must(t, err)
		var kinds []string
		for _, c := range msgs {
			kinds = append(kinds, fmt.Sprintf("level %d type %d", c.Header.Level, c.Header.Type))
		}
		if len(kinds) == 0 {
			return "no control message"
		}
		return strings.Join(kinds, ", ")
	}
	without := check(false)
	with := check(true)
	hostile.Row(t, secAnswered, "what SCM_CREDENTIALS turns into at the receiver",
		"without SO_PASSCRED (the opener's socket) nothing arrives; with it, SCM_CREDENTIALS (level 1 type 2), which Recv refuses as malformed",
		"without SO_PASSCRED: "+without+"; with SO_PASSCRED: "+with)
	if without != "no control message" {
		t.Errorf("without SO_PASSCRED the receiver got %s", without)
	}
	if with == "no control message" {
		t.Errorf("with SO_PASSCRED the receiver got no credentials")
	}
}

// TestHostileEndOfStreamWithRequestsPending ends the stream right after a
// burst of requests: with shutdown(SHUT_WR) the opener must answer every one
// and then exit 0; with the socket closed (nobody left to answer) it must
// exit 0 too, not fail on the replies it cannot send.
func TestHostileEndOfStreamWithRequestsPending(t *testing.T) {
	fx := newHostileFixture(t)
	const n = 200
	for _, closeAll := range []bool{false, true} {
		name := "shutdown(SHUT_WR)"
		if closeAll {
			name = "close(2)"
		}
		t.Run(name, func(t *testing.T) {
			p := fx.start(t)
			for i := 1; i <= n; i++ {
				p.MustSend(openMsg(uint32(i), fx.file), nil)
			}
			var got string
			var code int
			var err error
			if closeAll {
				unix.Close(p.Sock)
				p.Sock = -1
				code, got, err = p.Exit(hostile.Timeout)
			} else {
				testutil.Must(t, unix.Shutdown(p.Sock, unix.SHUT_WR))
				var msgs []protocol.Msg
				code, got, msgs, err = p.Finish()
				opened := 0
				for _, m := range msgs {
					if m.Type == protocol.TypeOpened {
						opened++
					}
				}
				got = fmt.Sprintf("%d of %d answered with opened, then %s", opened, n, got[strings.LastIndex(got, "then ")+5:])
				if opened != n {
					t.Errorf("%d of %d requests answered before end of stream", opened, n)
				}
			}
			want := fmt.Sprintf("%d of %d answered with opened, then exit 0", n, n)
			if closeAll {
				want = "exit 0"
			}
			hostile.Row(t, secLoad, fmt.Sprintf("%d requests, then at once %s", n, name), want, got)
			if err != nil {
				t.Fatal(err)
			}
			if code != protocol.ExitOK {
				t.Errorf("exit status %d, want 0; stderr: %s", code, p.Stderr())
			}
		})
	}
}

// TestHostileMixedPipeline keeps a window of requests in flight, good ones
// mixed with refused and malformed ones and ones carrying descriptors, so
// that the opener's workers meet them concurrently: every id must be
// answered exactly once, each with the reply its kind calls for.
func TestHostileMixedPipeline(t *testing.T) {
	fx := newHostileFixture(t)
	p, before := fx.startServing(t)
	pipe := testutil.Pipe(t)
	total := 20000
	if hostile.Race {
		total = 5000
	}
	const window = 64
	type kind struct {
		name  string
		build func(id uint32) ([]byte, []byte)
		want  func(id uint32) string
	}
	errWant := func(r protocol.Reason, e syscall.Errno) func(uint32) string {
		return func(id uint32) string { return hostile.ReplyText(id, r, e) }
	}
	kinds := []kind{
		{"granted", func(id uint32) ([]byte, []byte) { return openMsg(id, fx.file), nil },
			func(id uint32) string { return fmt.Sprintf("opened id %d with 1 fd", id) }},
		{"denied", func(id uint32) ([]byte, []byte) { return openMsg(id, "/etc/passwd"), nil },
			errWant(protocol.ReasonDenied, unix.EACCES)},
		{"missing", func(id uint32) ([]byte, []byte) { return openMsg(id, fx.dir+"/missing"), nil },
			errWant(protocol.ReasonSystem, unix.ENOENT)},
		{"malformed payload", func(id uint32) ([]byte, []byte) {
			return hostile.Message(protocol.TypeOpen, id, 0, []byte{1, 2, 3}), nil
		},
			errWant(protocol.ReasonProtocol, unix.EPROTO)},
		{"unknown type", func(id uint32) ([]byte, []byte) { return hostile.Message(0xee, id, 0, nil), nil },
			errWant(protocol.ReasonProtocol, unix.EPROTO)},
		{"descriptor attached", func(id uint32) ([]byte, []byte) {
			return hostile.SetNFD(openMsg(id, fx.file), 1), hostile.Rights(pipe[id%2])
		}, errWant(protocol.ReasonProtocol, unix.EPROTO)},
		{"batch", func(id uint32) ([]byte, []byte) {
			m, _ := protocol.AppendOpenBatch(nil, id, []protocol.Open{{Path: []byte(fx.file)}, {Path: []byte("/etc/passwd")}})
			return m, nil
		}, func(id uint32) string { return fmt.Sprintf("batch-reply id %d: 2 items, 1 ok, 1 fds", id) }},
	}
	want := make(map[uint32]string, total)
	sent, got, wrong, dup := 0, 0, 0, 0
	var firstWrong string
	seen := make(map[uint32]bool, total)
	begin := time.Now()
	for got < total {
		for sent < total && sent-got < window {
			sent++
			id := uint32(sent + 10)
			k := kinds[sent%len(kinds)]
			data, oob := k.build(id)
			want[id] = k.want(id)
			if err := p.SendRaw(data, oob, 0); err != nil {
				t.Fatalf("request %d: %v", sent, err)
			}
		}
		m, err := p.Recv(hostile.Timeout)
		if err != nil {
			t.Fatalf("after %d replies: %v; stderr: %s", got, err, p.Stderr())
		}
		got++
		d := hostile.Describe(m)
		protocol.CloseFDs(m.FDs)
		if seen[m.ID] {
			dup++
		}
		seen[m.ID] = true
		if d != want[m.ID] {
			wrong++
			if firstWrong == "" {
				firstWrong = fmt.Sprintf("got %s, want %s", d, want[m.ID])
			}
		}
	}
	elapsed := time.Since(begin)
	probeErr := p.Probe(2, fx.file)
	after := p.FDs(before)
	hostile.Row(t, secLoad, fmt.Sprintf("%d requests pipelined %d deep, seven kinds mixed (granted, denied, missing, malformed, unknown type, descriptor attached, batch)", total, window),
		"every id answered exactly once with the reply of its kind; serves on; fds unchanged",
		fmt.Sprintf("%d replies in %v, %d wrong, %d duplicates; probe %s; fds %d→%d", got, elapsed.Round(time.Millisecond), wrong, dup, okText(probeErr), before, after))
	if wrong > 0 || dup > 0 {
		t.Errorf("%d wrong replies, %d duplicates; first wrong: %s", wrong, dup, firstWrong)
	}
	if probeErr != nil {
		t.Error(probeErr)
	}
	if after != before {
		t.Errorf("opener descriptors %d→%d", before, after)
	}
}
