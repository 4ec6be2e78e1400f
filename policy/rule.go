package policy

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// MaxPath is the longest path, in bytes, that a rule or a request may name.
const MaxPath = 4096

// Mode is a set of access modes a rule grants.
type Mode uint8

// The modes a rule may grant, written r, w, a and c.
const (
	Read   Mode = 1 << iota // r: open for reading
	Write                   // w: open for writing (O_WRONLY, O_RDWR), truncate (O_TRUNC)
	Append                  // a: open for writing only with O_APPEND; never truncate
	Create                  // c: create (O_CREAT, O_EXCL, O_TMPFILE)

	allModes = Read | Write | Append | Create
)

var modeLetters = []struct {
	m Mode
	c byte
}{{Read, 'r'}, {Write, 'w'}, {Append, 'a'}, {Create, 'c'}}

func (m Mode) String() string {
	var b strings.Builder
	for _, l := range modeLetters {
		if m&l.m != 0 {
			b.WriteByte(l.c)
		}
	}
	if m&^allModes != 0 {
		fmt.Fprintf(&b, "?%#x", uint8(m&^allModes))
	}
	return b.String()
}

// DefaultCreateMode is the most permissive mode a created file may have
// when the rule does not narrow it.
const DefaultCreateMode = 0o666

// NoOwner marks Rule.UID and Rule.GID as unset.
const NoOwner int64 = -1

// Rule allows access to one file or to a directory tree.
type Rule struct {
	// Path is absolute and clean, without a trailing slash (except the root
	// "/", which is always a tree).
	Path string
	// Tree is true when the rule covers everything beneath Path, and Path
	// itself as a directory.
	Tree bool
	// Modes is what the rule grants.
	Modes Mode
	// CreateMode is the most permissive mode a file created under this rule
	// may get (the requested mode is masked with it). Zero means
	// DefaultCreateMode. It never has bits outside 0666.
	CreateMode uint32
	// UID and GID, when not NoOwner, are applied with fchown to every file
	// the opener creates under this rule, before the descriptor is sent.
	// They are int64 so that every id up to 2^32-2 fits on 32-bit hosts.
	UID, GID int64
	// Hardlinks allows opening a regular file that has more than one link
	// (st_nlink > 1), written hardlinks=yes. Without it the opener refuses
	// one: whoever can write in the rule's tree could have placed a hard
	// link there to a file it could not open itself, and the kernel's
	// fs.protected_hardlinks, which would stop that, is a sysctl the opener
	// cannot count on.
	Hardlinks bool
	// Dirs, written dirs=yes, lets the opener hand out descriptors of
	// directories the rule covers: the tree's directories, or the one an
	// exact rule names. Without it an open that lands on a directory is
	// refused (the parent may still list it, see the readdir message),
	// because a directory descriptor gives its holder more than the rule
	// names: openat(fd, "..") and fchdir(fd) work with the holder's own
	// credentials, so it reaches the directory's ancestors past one it could
	// not search itself, and out of a chroot it has put itself in. Only
	// Landlock, which the holder cannot shed, still bounds what it reaches.
	// It needs the r mode: a directory opens for reading only.
	Dirs bool
	// Optional, written optional=yes, says the rule's directory (the tree
	// a tree rule names) may be missing when the opener starts. Without it
	// a tree rule whose directory does not resolve at the handshake is
	// refused, naming the rule, since every request under it would fail.
	// With it the opener starts, logs a warning, and requests under the
	// rule fail with the errno the resolution gave (ENOENT): the directory
	// is resolved once, at the handshake, so one created later is not seen
	// until the opener is restarted.
	Optional bool
	// Network and Addr, when Network is not empty, make this a listen rule:
	// it allows the opener to create one listening socket (a TCP or unix
	// stream listener, or a bound UDP socket) instead of opening a path,
	// and Path, Tree and Modes are unused. Network is tcp, tcp4, tcp6, udp,
	// udp4, udp6 or unix; Addr is as Go writes it (":443",
	// "127.0.0.1:8443", "[::1]:53", or an absolute path for unix). Hosts
	// are IP literals or empty; names are refused, since resolving them
	// would make the opener depend on DNS. A request must name exactly the
	// same network and address, so port 0 only when the rule says 0. For
	// unix sockets CreateMode is the socket file's mode (0 means
	// DefaultSocketMode), UID and GID its owner, and Replace allows
	// replacing an existing socket file.
	Network, Addr string
	Replace       bool
	// Source says where the rule was written ("app.policy:3", "--allow"),
	// for messages. It is not part of the rule's meaning: String leaves it
	// out and the opener never sees it.
	Source string
}

// createMode returns the effective creation mask.
func (r Rule) createMode() uint32 {
	if r.CreateMode == 0 {
		return DefaultCreateMode
	}
	return r.CreateMode
}

// pathString is the path as rules write it: with a trailing slash for a
// tree.
func (r Rule) pathString() string {
	if r.Tree && r.Path != "/" {
		return r.Path + "/"
	}
	return r.Path
}

// String returns the rule as one line of the policy language, the form
// ParseLine reads and the opener receives: modes, the path (quoted when it
// has spaces, quotes or unprintable bytes), then its options.
//
//	r:/etc/hostname
//	rwc:/var/lib/app/ mode=0640 owner=1000:1000
//	r:/srv/mirror/ hardlinks=yes
//	r:"/srv/my files/"
func (r Rule) String() string {
	if r.IsListen() {
		return r.listenString()
	}
	var b strings.Builder
	b.WriteString(r.Modes.String())
	b.WriteByte(':')
	r.writeTarget(&b, r.pathString())
	if r.Hardlinks {
		b.WriteString(" hardlinks=yes")
	}
	if r.Dirs {
		b.WriteString(" dirs=yes")
	}
	if r.Optional {
		b.WriteString(" optional=yes")
	}
	return b.String()
}

// writeTarget writes what a rule applies to, the path or network:address
// (quoted when it has spaces, quotes or unprintable bytes), then the options
// every kind of rule may have: the creation mode and the owner.
func (r Rule) writeTarget(b *strings.Builder, target string) {
	if needsQuote(target) {
		target = strconv.Quote(target)
	}
	b.WriteString(target)
	if r.CreateMode != 0 {
		fmt.Fprintf(b, " mode=%04o", r.CreateMode)
	}
	writeOwner(b, r.UID, r.GID)
}

func writeOwner(b *strings.Builder, uid, gid int64) {
	if uid == NoOwner && gid == NoOwner {
		return
	}
	b.WriteString(" owner=")
	if uid != NoOwner {
		b.WriteString(strconv.FormatInt(uid, 10))
	}
	if gid != NoOwner {
		b.WriteString(":" + strconv.FormatInt(gid, 10))
	}
}

func needsQuote(p string) bool {
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c == '"' || c == '#' || c >= 0x7f {
			return true
		}
	}
	return false
}

// A RuleError reports a rule that cannot be used.
type RuleError struct {
	Rule string // the rule as written
	Why  string
}

func (e *RuleError) Error() string { return fmt.Sprintf("rule %q: %s", e.Rule, e.Why) }

// ParseRule parses one rule written [MODES:]PATH, the command-line form:
// the whole string after the colon is the path, spaces included, and there
// are no options. No MODES means "r".
func ParseRule(s string) (Rule, error) {
	modes, path, err := splitModes(s)
	if err != nil {
		return Rule{}, &RuleError{Rule: s, Why: err.Error()}
	}
	return newRule(s, modes, path)
}

// splitModes splits "[MODES:]PATH" and parses MODES.
func splitModes(s string) (Mode, string, error) {
	letters, path := "r", s
	if !strings.HasPrefix(s, "/") && !strings.HasPrefix(s, `"`) {
		i := strings.IndexByte(s, ':')
		if i < 0 {
			return 0, "", fmt.Errorf("path must be absolute")
		}
		letters, path = s[:i], s[i+1:]
		if letters == "" {
			return 0, "", fmt.Errorf("empty mode list before ':'")
		}
	}
	m, err := parseModes(letters)
	return m, path, err
}

func parseModes(letters string) (Mode, error) {
	var m Mode
	for i := 0; i < len(letters); i++ {
		var l Mode
		switch letters[i] {
		case 'r':
			l = Read
		case 'w':
			l = Write
		case 'a':
			l = Append
		case 'c':
			l = Create
		default:
			return 0, fmt.Errorf("unknown mode %q (known: r, w, a, c)", letters[i])
		}
		if m&l != 0 {
			return 0, fmt.Errorf("mode %q given twice", letters[i])
		}
		m |= l
	}
	if m&Write != 0 && m&Append != 0 {
		return 0, fmt.Errorf("modes w and a contradict each other: a means append only")
	}
	return m, nil
}

// newRule checks path and builds a rule with no options.
func newRule(src string, modes Mode, path string) (Rule, error) {
	bad := func(format string, args ...any) (Rule, error) {
		return Rule{}, &RuleError{Rule: src, Why: fmt.Sprintf(format, args...)}
	}
	if path == "" {
		return bad("empty path")
	}
	if !strings.HasPrefix(path, "/") {
		return bad("path must be absolute")
	}
	if len(path) > MaxPath {
		return bad("path is %d bytes, longer than %d", len(path), MaxPath)
	}
	if strings.IndexByte(path, 0) >= 0 {
		return bad("path contains a NUL byte")
	}
	r := Rule{Path: path, Modes: modes, UID: NoOwner, GID: NoOwner}
	if path == "/" {
		r.Tree = true
	} else if strings.HasSuffix(path, "/") {
		r.Tree = true
		r.Path = path[:len(path)-1]
		if r.Path == "/" { // "//"
			return bad("path is not clean (want %q)", "/")
		}
	}
	if !isClean(r.Path) {
		return bad("path is not clean (want %q)", cleanHint(path))
	}
	if why := ownProcessPath(r.Path, r.Tree); why != "" {
		return bad("%s", why)
	}
	return r, nil
}

// ownProcessPath says why a rule at path (clean, absolute) would reach into
// the process that opens it, or "" when it would not. /proc/self,
// /proc/thread-self and /dev/fd, /dev/stdin, /dev/stdout and /dev/stderr
// are links into the opener's own process, and /proc/<pid> is a process's
// own directory (the opener's among them): a rule there hands out the
// opener's memory, descriptors and credentials. A tree rule at /proc holds
// /proc/self. The opener checks again, on what the rule's directory
// resolves to, at its handshake: a symlink elsewhere can lead here too.
func ownProcessPath(path string, tree bool) string {
	const why = "%s is %s: a rule there would hand the opener's own memory, descriptors and credentials to whoever asks; name the files you need elsewhere"
	first, rest, _ := strings.Cut(path[1:], "/")
	second, _, _ := strings.Cut(rest, "/")
	switch {
	case first == "proc" && rest == "" && tree:
		return "a tree rule at /proc holds /proc/self, the opener's own process: name the files you need (such as r:/proc/cpuinfo, r:/proc/sys/...)"
	case first == "proc" && (second == "self" || second == "thread-self"):
		return fmt.Sprintf(why, "/proc/"+second, "the opener's own process")
	case first == "proc" && isDigits(second):
		return fmt.Sprintf(why, "/proc/"+second, "a process's own directory (the opener's, for its pid)")
	case first == "dev" && (second == "fd" || second == "stdin" || second == "stdout" || second == "stderr"):
		return fmt.Sprintf(why, "/dev/"+second, "a link into the opener's own descriptors")
	}
	return ""
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func cleanHint(p string) string {
	c := filepath.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// isClean reports whether the absolute path p is what filepath.Clean would
// return for it: no empty, "." or ".." components and no trailing slash,
// except for "/" itself. Unlike comparing with filepath.Clean, it never
// allocates, so refusing a request stays as cheap as allowing one.
func isClean(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	if p == "/" {
		return true
	}
	for i := 1; i <= len(p); {
		j := strings.IndexByte(p[i:], '/')
		if j < 0 {
			j = len(p) - i
		}
		switch p[i : i+j] {
		case "", ".", "..":
			return false
		}
		i += j + 1
	}
	return true
}

// hasDotDot reports whether p has a ".." component: a second, independent
// check beside isClean.
func hasDotDot(p string) bool {
	for i := 0; i+1 < len(p); i++ {
		if p[i] == '.' && p[i+1] == '.' &&
			(i == 0 || p[i-1] == '/') &&
			(i+2 == len(p) || p[i+2] == '/') {
			return true
		}
	}
	return false
}
