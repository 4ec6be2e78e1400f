package policy

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Policy is a compiled, immutable set of rules. It is safe for concurrent use.
type Policy struct {
	rules   []Rule
	dirs    []string          // directories requests are opened beneath
	exact   map[string]int    // path → rule index, for exact-file rules
	trees   map[string]int    // path → rule index, for tree rules
	listens map[listenKey]int // network and address → rule index
	dirOf   []int             // rule index → index in dirs
}

// New compiles rules into a Policy. Rules must come from ParseRule or be
// equally well formed; a rule that names the same path and kind as an
// earlier one is an error, so that no rule is silently ignored. A rule that
// lies inside a tree rule granting more than it does is an error too (a
// *NestingError): see checkNesting.
func New(rules []Rule) (*Policy, error) {
	p := &Policy{
		rules:   append([]Rule(nil), rules...),
		exact:   make(map[string]int),
		trees:   make(map[string]int),
		listens: make(map[listenKey]int),
		dirOf:   make([]int, len(rules)),
	}
	dirIndex := make(map[string]int)
	for i, r := range p.rules {
		// A Rule built by hand must be exactly what ParseLine makes of its
		// own String form; anything else is not well formed.
		back, err := ParseLine(r.String(), nil)
		back.Source = r.Source
		if err != nil || back != r {
			return nil, &RuleError{Rule: fmt.Sprintf("%#v", r), Why: "not a well-formed rule"}
		}
		if r.IsListen() {
			k := listenKey{r.Network, r.Addr}
			if j, dup := p.listens[k]; dup {
				return nil, duplicateError(r, p.rules[j], j)
			}
			p.listens[k] = i
			p.dirOf[i] = -1
			continue
		}
		m, dir := p.exact, filepath.Dir(r.Path)
		if r.Tree {
			m, dir = p.trees, r.Path
		}
		if j, dup := m[r.Path]; dup {
			return nil, duplicateError(r, p.rules[j], j)
		}
		m[r.Path] = i
		d, ok := dirIndex[dir]
		if !ok {
			d = len(p.dirs)
			dirIndex[dir] = d
			p.dirs = append(p.dirs, dir)
		}
		p.dirOf[i] = d
	}
	if err := p.checkNesting(); err != nil {
		return nil, err
	}
	return p, nil
}

// Parse parses and compiles rules written as ParseRule reads them (the
// command-line form).
func Parse(rules []string) (*Policy, error) {
	rs := make([]Rule, 0, len(rules))
	for _, s := range rules {
		r, err := ParseRule(s)
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	return New(rs)
}

// Rules returns a copy of the policy's rules, in order.
func (p *Policy) Rules() []Rule { return append([]Rule(nil), p.rules...) }

// Strings returns the rules as lines of the policy language (Rule.String),
// in order: what the parent sends the opener.
func (p *Policy) Strings() []string {
	s := make([]string, len(p.rules))
	for i, r := range p.rules {
		s[i] = r.String()
	}
	return s
}

// Dirs returns the directories that requests are opened beneath, one per
// distinct directory: a tree rule's own path, an exact rule's parent. The
// opener opens each once, at start; Decision.Dir indexes this slice.
func (p *Policy) Dirs() []string { return append([]string(nil), p.dirs...) }

// Decision says how to carry out an allowed request.
type Decision struct {
	Rule  int    // index of the deciding rule in Rules()
	Dir   int    // index in Dirs() of the directory to open beneath
	Rel   string // path relative to that directory; "." for the directory itself
	Flags int    // the flags to open with: sanitised, O_CLOEXEC|O_NOCTTY added
	// Mode is the creation mode to pass with O_CREAT or O_TMPFILE: the
	// requested mode masked with the rule's CreateMode (at most 0666, so
	// never setuid, setgid, sticky or execute). Zero when not creating.
	Mode uint32
	// UID and GID are the owner to give a file the open creates, or NoOwner.
	UID, GID int64
	// Exact is true when an exact-file rule decided. Rel is then a single
	// component, and the opener must not follow it if it is a symlink: the
	// rule names that directory entry, not whatever it points to.
	Exact bool
	// Hardlinks is the rule's hardlinks=yes: the opener may hand out a
	// regular file with more than one link. Without it the opener checks
	// st_nlink after the open and refuses such a file.
	Hardlinks bool
	// Dirs is true when the rule allows handing out a descriptor of a
	// directory (dirs=yes). Without it the opener refuses an open that
	// lands on a directory, whatever the flags asked.
	Dirs bool
}

// Match finds the rule that decides path, without looking at flags. It
// assumes path passed CheckPath.
func (p *Policy) Match(path string) (Decision, bool) {
	if i, ok := p.exact[path]; ok {
		return Decision{Rule: i, Dir: p.dirOf[i], Rel: path[strings.LastIndexByte(path, '/')+1:], Exact: true}, true
	}
	// Walk up the path one component at a time; each step is one map lookup
	// on a substring, so the cost grows with the path's depth, not with the
	// number of rules.
	for d := path; ; {
		if i, ok := p.trees[d]; ok {
			rel := "."
			switch {
			case len(d) == len(path):
			case d == "/":
				rel = path[1:]
			default:
				rel = path[len(d)+1:]
			}
			return Decision{Rule: i, Dir: p.dirOf[i], Rel: rel}, true
		}
		if d == "/" {
			return Decision{}, false
		}
		j := strings.LastIndexByte(d, '/')
		if j == 0 {
			d = "/"
		} else {
			d = d[:j]
		}
	}
}

// Check decides a request: it validates path and flags, finds the deciding
// rule and checks that the rule grants what the flags ask. mode is the
// requested creation mode; it is used only when the flags create a file.
// On refusal the error is a Refusal, and Decision.Rule is the rule that
// refused or -1 when none was consulted. Check never allocates.
func (p *Policy) Check(path string, flags int, mode uint32) (Decision, error) {
	if err := CheckPath(path); err != nil {
		return Decision{Rule: -1}, err
	}
	clean, n, err := sanitize(flags)
	if err != nil {
		return Decision{Rule: -1}, err
	}
	d, ok := p.Match(path)
	if !ok {
		return Decision{Rule: -1}, errNoRule()
	}
	r := &p.rules[d.Rule]
	if err := grant(r, n, d.Exact); err != nil {
		return Decision{Rule: d.Rule}, err
	}
	d.Flags = clean
	d.Hardlinks = r.Hardlinks
	d.Dirs = r.Dirs
	d.UID, d.GID = NoOwner, NoOwner
	if n.create {
		d.Mode = mode & r.createMode()
		d.UID, d.GID = r.UID, r.GID
	}
	return d, nil
}

// Kind classifies a refusal.
type Kind uint8

const (
	// Denied: the request is well formed but no rule allows it.
	Denied Kind = iota + 1
	// BadRequest: the request is not well formed (path or flags).
	BadRequest
)

// Refusal is the error Check, CheckListen and CheckPath return. Errno is
// what the opener reports: EACCES for denials, EINVAL or ENAMETOOLONG for
// bad requests.
//
// It is a value, not a pointer: each refusal is a constant, so refusing a
// request allocates nothing, and no caller can change what another caller
// (or the next request) is told, as one could through a shared pointer.
// Take it apart with errors.As, into a Refusal or, as before, a *Refusal
// (which then points to a copy of the caller's own).
type Refusal struct {
	Kind  Kind
	Errno syscall.Errno
	Why   string
}

func (r Refusal) Error() string {
	if r.Kind == Denied {
		return "denied by policy: " + r.Why
	}
	return "bad request: " + r.Why
}

// As lets errors.As fill a *Refusal target, with a fresh copy of r.
func (r Refusal) As(target any) bool {
	p, ok := target.(**Refusal)
	if ok {
		c := r
		*p = &c
	}
	return ok
}

// The path and listen refusals, each a constant Refusal: converting a
// constant composite literal to an interface allocates nothing.
func errNoRule() error      { return Refusal{Denied, syscall.EACCES, "no rule matches the path"} }
func errNotAbsolute() error { return Refusal{BadRequest, syscall.EINVAL, "path is not absolute"} }
func errEmpty() error       { return Refusal{BadRequest, syscall.EINVAL, "path is empty"} }
func errTooLong() error {
	return Refusal{BadRequest, syscall.ENAMETOOLONG, "path is longer than 4096 bytes (MaxPath)"}
}
func errNUL() error { return Refusal{BadRequest, syscall.EINVAL, "path contains a NUL byte"} }
func errNotClean() error {
	return Refusal{BadRequest, syscall.EINVAL, "path is not clean (\"..\", \".\", \"//\" or a trailing slash)"}
}
func errBadListen() error {
	return Refusal{BadRequest, syscall.EINVAL, "not a network and address a listen rule can name"}
}
func errNoListenRule() error {
	return Refusal{Denied, syscall.EACCES, "no listen rule names this network and address"}
}

// CheckPath reports whether path is acceptable in a request: absolute, clean,
// without ".." components or NUL bytes, at most MaxPath bytes. It never
// cleans a path; it refuses one that needs cleaning.
func CheckPath(path string) error {
	switch {
	case path == "":
		return errEmpty()
	case len(path) > MaxPath:
		return errTooLong()
	case path[0] != '/':
		return errNotAbsolute()
	case strings.IndexByte(path, 0) >= 0:
		return errNUL()
	case !isClean(path) || hasDotDot(path):
		return errNotClean()
	}
	return nil
}

// ParseLines parses and compiles rules written as ParseLine reads them,
// with numeric owners only: the form the opener receives.
func ParseLines(lines []string) (*Policy, error) {
	rs := make([]Rule, 0, len(lines))
	for _, s := range lines {
		r, err := ParseLine(s, nil)
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	return New(rs)
}

// duplicateError reports r, which repeats rule j (prev).
func duplicateError(r, prev Rule, j int) error {
	where := fmt.Sprintf("rule %d", j+1)
	if prev.Source != "" {
		where = prev.Source
	}
	err := error(&RuleError{Rule: r.String(), Why: fmt.Sprintf("duplicates %s (%s)", where, prev)})
	if file, line, ok := splitSource(r.Source); ok {
		err = &FileError{File: file, Line: line, Err: err}
	}
	return err
}

// splitSource splits a Source of the form "FILE:LINE".
func splitSource(src string) (string, int, bool) {
	if strings.HasPrefix(src, "--") { // a command-line flag, not a file
		return "", 0, false
	}
	i := strings.LastIndexByte(src, ':')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(src[i+1:])
	if err != nil {
		return "", 0, false
	}
	return src[:i], n, true
}
