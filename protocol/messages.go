package protocol

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// Flags of the hello message.
const (
	// HelloNoOpenat2 asks the opener not to use openat2(2) even where the
	// kernel has it, and to resolve paths with its component-by-component
	// fallback instead. It exists so that tests can exercise the fallback on
	// a modern kernel; it is fixed at start, like the policy.
	HelloNoOpenat2 uint16 = 1 << 0

	// HelloBroker allows one broker message on the connection: the parent
	// will hand the opener a seccomp user-notification listener and the
	// opener serves the opens it reports (privsep exec --broker). Without
	// it a broker message is refused, so no other parent can start one.
	HelloBroker uint16 = 1 << 1

	// HelloBrokerOnly, with HelloBroker, makes the broker refuse (EACCES)
	// every call it does not serve instead of letting it go ahead, except
	// reads of world-readable files beneath the dynamic loader's
	// directories, which it serves (privsep exec --broker-only).
	HelloBrokerOnly uint16 = 1 << 2

	helloFlagsKnown = HelloNoOpenat2 | HelloBroker | HelloBrokerOnly
)

// Features reported in the ready message.
const (
	// FeatureOpenat2 says the opener resolves paths with openat2(2) and
	// RESOLVE_BENEATH; without it the opener walks paths one component at a
	// time (see PROTOCOL.md for what that fallback cannot prevent).
	FeatureOpenat2 uint16 = 1 << 0

	// FeatureReadDir says the opener answers readdir requests, so that a
	// parent can list a directory without holding its descriptor.
	FeatureReadDir uint16 = 1 << 1

	readyFeaturesKnown = FeatureOpenat2 | FeatureReadDir
)

// MaxRule is the longest rule string a hello may carry.
const MaxRule = MaxPath + 256

// Hello is the first message, sent by the parent with id 0. It fixes the
// policy for the life of the opener.
//
//	payload: u16 version, u16 flags, u16 rule count, u16 reserved (0),
//	         then per rule: u16 length, the rule's bytes
type Hello struct {
	Version uint16
	Flags   uint16
	Rules   []string // rules in the policy language; package policy parses them
}

// Ready answers a hello, with id 0.
//
//	payload: u32 pid, u16 version, u16 features
type Ready struct {
	PID      uint32
	Version  uint16
	Features uint16
}

// Open asks the opener to open one path.
//
//	payload: u32 flags, u32 mode, path (the rest: 1 to MaxPath bytes, no NUL
//	terminator)
//
// Path aliases the buffer it was decoded from.
type Open struct {
	Flags uint32
	Mode  uint32
	Path  []byte
}

// Reason says why a request failed.
type Reason uint16

// Reasons carried by error replies and batch statuses.
const (
	ReasonOK         Reason = 0 // batch status only: the item succeeded
	ReasonDenied     Reason = 1 // no rule allows the path with these flags
	ReasonBadRequest Reason = 2 // the request is not well formed (path not clean, bad flags)
	ReasonSystem     Reason = 3 // the kernel refused the open; errno says why
	ReasonEscape     Reason = 4 // resolution would leave the rule's tree (symlink, "..")
	ReasonFileType   Reason = 5 // not a regular file or directory (FIFO, device, socket)
	ReasonProtocol   Reason = 6 // the message broke the protocol
	ReasonLinks      Reason = 7 // a regular file with more than one link, and the rule has no hardlinks=yes
	ReasonDirectory  Reason = 8 // a directory, and the rule has no dirs=yes (errno EACCES)
	ReasonLimit      Reason = 9 // a limit of the server was reached (errno says which; see PROTOCOL.md)
	maxReason               = ReasonLimit
)

func (r Reason) String() string {
	switch r {
	case ReasonOK:
		return "ok"
	case ReasonDenied:
		return "denied by policy"
	case ReasonBadRequest:
		return "bad request"
	case ReasonSystem:
		return "system error"
	case ReasonEscape:
		return "path escapes the rule"
	case ReasonFileType:
		return "not a regular file or directory"
	case ReasonProtocol:
		return "protocol violation"
	case ReasonLinks:
		return "multiply-linked file; the rule has no hardlinks=yes"
	case ReasonLimit:
		return "a limit was reached"
	case ReasonDirectory:
		return "a directory, and the rule does not hand out directory descriptors (dirs=yes)"
	}
	return fmt.Sprintf("reason(%d)", uint16(r))
}

// ErrorReply reports a failed request. Errno is a Linux errno value.
//
//	payload: u32 errno, u16 reason, u16 reserved (0)
type ErrorReply struct {
	Errno  uint32
	Reason Reason
}

// Status is one item's outcome in a batch reply. Reason is ReasonOK exactly
// when Errno is 0; each ReasonOK item consumes the next descriptor attached
// to the reply, in order.
type Status = ErrorReply

const (
	helloFixed  = 8
	readySize   = 8
	openFixed   = 8
	errorSize   = 8
	batchFixed  = 4
	itemFixed   = 10
	statusSize  = 8
	ruleLenSize = 2
)

// AppendHello appends a whole hello message (header included) to b.
func AppendHello(b []byte, h *Hello) ([]byte, error) {
	if len(h.Rules) > 0xffff {
		return b, fmt.Errorf("protocol: %d rules exceed the hello's limit of 65535", len(h.Rules))
	}
	start := len(b)
	b = appendHeader(b)
	b = binary.LittleEndian.AppendUint16(b, h.Version)
	b = binary.LittleEndian.AppendUint16(b, h.Flags)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(h.Rules)))
	b = binary.LittleEndian.AppendUint16(b, 0)
	for _, r := range h.Rules {
		if len(r) == 0 || len(r) > MaxRule {
			return b[:start], fmt.Errorf("protocol: rule of %d bytes: want 1 to %d", len(r), MaxRule)
		}
		b = binary.LittleEndian.AppendUint16(b, uint16(len(r)))
		b = append(b, r...)
	}
	return finish(b, start, TypeHello, 0, 0)
}

// DecodeHello decodes a hello payload. A version other than Version is
// reported with an error matching ErrVersion.
func DecodeHello(p []byte) (Hello, error) {
	if len(p) < helloFixed {
		return Hello{}, malformed("hello payload of %d bytes is shorter than %d", len(p), helloFixed)
	}
	h := Hello{
		Version: binary.LittleEndian.Uint16(p[0:]),
		Flags:   binary.LittleEndian.Uint16(p[2:]),
	}
	n := int(binary.LittleEndian.Uint16(p[4:]))
	if r := binary.LittleEndian.Uint16(p[6:]); r != 0 {
		return Hello{}, malformed("hello reserved field is %#04x, want 0", r)
	}
	if h.Version != Version {
		return Hello{}, fmt.Errorf("protocol: %w %d in hello (this side speaks %d)", ErrVersion, h.Version, Version)
	}
	if h.Flags&^helloFlagsKnown != 0 {
		return Hello{}, malformed("unknown hello flags %#04x", h.Flags&^helloFlagsKnown)
	}
	if h.Flags&HelloBrokerOnly != 0 && h.Flags&HelloBroker == 0 {
		return Hello{}, malformed("hello flag HelloBrokerOnly without HelloBroker")
	}
	// Each rule takes at least 3 bytes, which bounds the allocation by what
	// actually arrived, not by what the count claims.
	rest := p[helloFixed:]
	if n > len(rest)/(ruleLenSize+1) {
		return Hello{}, malformed("hello declares %d rules in %d bytes", n, len(rest))
	}
	h.Rules = make([]string, 0, n)
	for i := 0; i < n; i++ {
		if len(rest) < ruleLenSize {
			return Hello{}, malformed("hello rule %d: length field truncated", i)
		}
		l := int(binary.LittleEndian.Uint16(rest))
		rest = rest[ruleLenSize:]
		if l == 0 || l > MaxRule {
			return Hello{}, malformed("hello rule %d: length %d, want 1 to %d", i, l, MaxRule)
		}
		if l > len(rest) {
			return Hello{}, malformed("hello rule %d: length %d overruns the %d bytes left", i, l, len(rest))
		}
		h.Rules = append(h.Rules, string(rest[:l]))
		rest = rest[l:]
	}
	if len(rest) != 0 {
		return Hello{}, malformed("hello has %d trailing bytes", len(rest))
	}
	return h, nil
}

// AppendReady appends a whole ready message to b.
func AppendReady(b []byte, r Ready) []byte {
	start := len(b)
	b = appendHeader(b)
	b = binary.LittleEndian.AppendUint32(b, r.PID)
	b = binary.LittleEndian.AppendUint16(b, r.Version)
	b = binary.LittleEndian.AppendUint16(b, r.Features)
	b, _ = finish(b, start, TypeReady, 0, 0)
	return b
}

// DecodeReady decodes a ready payload.
func DecodeReady(p []byte) (Ready, error) {
	if len(p) != readySize {
		return Ready{}, malformed("ready payload is %d bytes, want %d", len(p), readySize)
	}
	r := Ready{
		PID:      binary.LittleEndian.Uint32(p[0:]),
		Version:  binary.LittleEndian.Uint16(p[4:]),
		Features: binary.LittleEndian.Uint16(p[6:]),
	}
	if r.Version != Version {
		return Ready{}, fmt.Errorf("protocol: %w %d in ready (this side speaks %d)", ErrVersion, r.Version, Version)
	}
	if r.Features&^readyFeaturesKnown != 0 {
		return Ready{}, malformed("unknown ready features %#04x", r.Features&^readyFeaturesKnown)
	}
	if r.PID == 0 {
		return Ready{}, malformed("ready carries pid 0")
	}
	return r, nil
}

func checkPathLen(n int) error {
	if n == 0 || n > MaxPath {
		return fmt.Errorf("path of %d bytes: want 1 to %d", n, MaxPath)
	}
	return nil
}

// AppendOpen appends a whole open request with the given id to b.
func AppendOpen(b []byte, id uint32, o Open) ([]byte, error) {
	return appendOpen(b, id, o.Flags, o.Mode, o.Path)
}

// AppendOpenPath is AppendOpen for a path held in a string, which it does not
// copy into a temporary byte slice.
func AppendOpenPath(b []byte, id, flags, mode uint32, path string) ([]byte, error) {
	return appendOpen(b, id, flags, mode, path)
}

func appendOpen[P string | []byte](b []byte, id, flags, mode uint32, path P) ([]byte, error) {
	if err := checkPathLen(len(path)); err != nil {
		return b, fmt.Errorf("protocol: open: %w", err)
	}
	start := len(b)
	b = appendHeader(b)
	b = binary.LittleEndian.AppendUint32(b, flags)
	b = binary.LittleEndian.AppendUint32(b, mode)
	b = append(b, path...)
	return finish(b, start, TypeOpen, id, 0)
}

// DecodeOpen decodes an open payload. The returned Path aliases p.
func DecodeOpen(p []byte) (Open, error) {
	if len(p) < openFixed {
		return Open{}, malformed("open payload of %d bytes is shorter than %d", len(p), openFixed)
	}
	o := Open{
		Flags: binary.LittleEndian.Uint32(p[0:]),
		Mode:  binary.LittleEndian.Uint32(p[4:]),
		Path:  p[openFixed:],
	}
	if err := checkPathLen(len(o.Path)); err != nil {
		return Open{}, malformed("open: %v", err)
	}
	return o, nil
}

// AppendOpened appends a whole opened reply to b. The message must be sent
// with exactly one descriptor.
func AppendOpened(b []byte, id uint32) []byte {
	return appendEmpty(b, TypeOpened, id, 1)
}

// DecodeOpened checks an opened payload, which is empty.
func DecodeOpened(p []byte) error {
	if len(p) != 0 {
		return malformed("opened payload is %d bytes, want 0", len(p))
	}
	return nil
}

// AppendError appends a whole error reply to b.
func AppendError(b []byte, id uint32, e ErrorReply) []byte {
	start := len(b)
	b = appendHeader(b)
	b = appendStatus(b, e)
	b, _ = finish(b, start, TypeError, id, 0)
	return b
}

func appendStatus(b []byte, e ErrorReply) []byte {
	b = binary.LittleEndian.AppendUint32(b, e.Errno)
	b = binary.LittleEndian.AppendUint16(b, uint16(e.Reason))
	return binary.LittleEndian.AppendUint16(b, 0)
}

// decodeStatus decodes one status; item is its index in a batch reply, or
// -1 in an error reply (it only names the place in errors, so that the
// success path formats nothing).
func decodeStatus(p []byte, item int) (ErrorReply, error) {
	e := ErrorReply{
		Errno:  binary.LittleEndian.Uint32(p[0:]),
		Reason: Reason(binary.LittleEndian.Uint16(p[4:])),
	}
	if r := binary.LittleEndian.Uint16(p[6:]); r != 0 {
		return ErrorReply{}, malformed("%s: status reserved field is %#04x, want 0", statusPlace(item), r)
	}
	if e.Reason > maxReason {
		return ErrorReply{}, malformed("%s: unknown reason %d", statusPlace(item), uint16(e.Reason))
	}
	return e, nil
}

func statusPlace(item int) string {
	if item < 0 {
		return "error reply"
	}
	return "batch reply item " + strconv.Itoa(item)
}

// DecodeError decodes an error payload. An error reply always carries a
// failure: ReasonOK or errno 0 is malformed.
func DecodeError(p []byte) (ErrorReply, error) {
	if len(p) != errorSize {
		return ErrorReply{}, malformed("error payload is %d bytes, want %d", len(p), errorSize)
	}
	e, err := decodeStatus(p, -1)
	if err != nil {
		return ErrorReply{}, err
	}
	if e.Reason == ReasonOK || e.Errno == 0 {
		return ErrorReply{}, malformed("error reply with reason %d and errno %d reports no failure", e.Reason, e.Errno)
	}
	return e, nil
}

// Networks of a listen request, as Go's net package names them.
var listenNetworks = [...]string{1: "tcp", 2: "tcp4", 3: "tcp6", 4: "udp", 5: "udp4", 6: "udp6", 7: "unix"}

// Listen asks the opener for a listening socket.
//
//	payload: u8 network (1 tcp, 2 tcp4, 3 tcp6, 4 udp, 5 udp4, 6 udp6,
//	         7 unix), u8 reserved (0), u16 reserved (0), address (the rest:
//	         1 to MaxPath bytes, as Go writes it: ":443", "[::1]:53", or a
//	         path for unix)
//
// The reply is opened (one descriptor: a listening TCP or unix stream
// socket, or a bound UDP socket) or error. Addr aliases the decoded buffer.
type Listen struct {
	Network string
	Addr    []byte
}

const listenFixed = 4

// AppendListen appends a whole listen request with the given id to b.
func AppendListen(b []byte, id uint32, network, addr string) ([]byte, error) {
	code := 0
	for i, n := range listenNetworks {
		if n != "" && n == network {
			code = i
		}
	}
	if code == 0 {
		return b, fmt.Errorf("protocol: listen: unknown network %q", network)
	}
	if err := checkPathLen(len(addr)); err != nil {
		return b, fmt.Errorf("protocol: listen: address %w", err)
	}
	start := len(b)
	b = appendHeader(b)
	b = append(b, byte(code), 0, 0, 0)
	b = append(b, addr...)
	return finish(b, start, TypeListen, id, 0)
}

// DecodeListen decodes a listen payload. Addr aliases p.
func DecodeListen(p []byte) (Listen, error) {
	if len(p) < listenFixed {
		return Listen{}, malformed("listen payload of %d bytes is shorter than %d", len(p), listenFixed)
	}
	code := int(p[0])
	if code == 0 || code >= len(listenNetworks) {
		return Listen{}, malformed("listen: unknown network code %d", code)
	}
	if p[1] != 0 || p[2] != 0 || p[3] != 0 {
		return Listen{}, malformed("listen: reserved bytes are not zero")
	}
	l := Listen{Network: listenNetworks[code], Addr: p[listenFixed:]}
	if err := checkPathLen(len(l.Addr)); err != nil {
		return Listen{}, malformed("listen: address %v", err)
	}
	return l, nil
}

// AppendBroker appends a broker message: the parent hands the opener the
// seccomp listener attached to it (one descriptor) to serve.
//
//	payload: empty; exactly one descriptor
func AppendBroker(b []byte, id uint32) []byte {
	return appendEmpty(b, TypeBroker, id, 1)
}

// DecodeBroker checks a broker message: an empty payload and exactly one
// descriptor.
func DecodeBroker(h Header, p []byte) error {
	if len(p) != 0 {
		return malformed("broker payload is %d bytes, want 0", len(p))
	}
	if h.NFD != 1 {
		return malformed("broker message carries %d descriptors, want 1", h.NFD)
	}
	return nil
}

// AppendBrokerAck appends the opener's answer to a broker message: it now
// serves the listener.
//
//	payload: empty; no descriptor
func AppendBrokerAck(b []byte, id uint32) []byte {
	return appendEmpty(b, TypeBrokerAck, id, 0)
}

// DecodeBrokerAck checks a broker-ack message: an empty payload and no
// descriptor.
func DecodeBrokerAck(h Header, p []byte) error {
	if len(p) != 0 || h.NFD != 0 {
		return malformed("broker-ack with a %d-byte payload and %d descriptors, want none", len(p), h.NFD)
	}
	return nil
}
