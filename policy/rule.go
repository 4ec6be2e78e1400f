package policy

import (
	"fmt"
	"path/filepath"
	"strings"
)

// MaxPath is the longest path, in bytes, that a rule or a request may name.
const MaxPath = 4096

// Mode is a set of access modes a rule grants.
type Mode uint8

// Modes. This version of the policy grants read access only.
const (
	Read Mode = 1 << iota
)

func (m Mode) String() string {
	var b strings.Builder
	if m&Read != 0 {
		b.WriteByte('r')
	}
	if m&^Read != 0 {
		fmt.Fprintf(&b, "?%#x", uint8(m&^Read))
	}
	return b.String()
}

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
}

// String returns the rule in the form ParseRule reads, always with its
// modes: "r:/etc/hostname", "r:/srv/www/".
func (r Rule) String() string {
	p := r.Path
	if r.Tree && p != "/" {
		p += "/"
	}
	return r.Modes.String() + ":" + p
}

// A RuleError reports a rule that cannot be used.
type RuleError struct {
	Rule string // the rule as written
	Why  string
}

func (e *RuleError) Error() string { return fmt.Sprintf("rule %q: %s", e.Rule, e.Why) }

// ParseRule parses one rule written [MODES:]PATH. No MODES means "r".
func ParseRule(s string) (Rule, error) {
	bad := func(format string, args ...any) (Rule, error) {
		return Rule{}, &RuleError{Rule: s, Why: fmt.Sprintf(format, args...)}
	}
	modes, path := "r", s
	if !strings.HasPrefix(s, "/") {
		i := strings.IndexByte(s, ':')
		if i < 0 {
			return bad("path must be absolute")
		}
		modes, path = s[:i], s[i+1:]
		if modes == "" {
			return bad("empty mode list before ':'")
		}
	}
	var r Rule
	for i := 0; i < len(modes); i++ {
		var m Mode
		switch modes[i] {
		case 'r':
			m = Read
		case 'w', 'a', 'c':
			return bad("mode %q is not supported by this version (read-only policy)", modes[i])
		default:
			return bad("unknown mode %q (known: r)", modes[i])
		}
		if r.Modes&m != 0 {
			return bad("mode %q given twice", modes[i])
		}
		r.Modes |= m
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
	r.Path = path
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
	return r, nil
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

func cleanHint(p string) string {
	c := filepath.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// hasDotDot reports whether p has a ".." component. filepath.Clean already
// removes them from absolute paths; this is a second, independent check.
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
