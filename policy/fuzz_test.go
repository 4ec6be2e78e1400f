package policy_test

import (
	"errors"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/policy"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/.

// FuzzParseRule checks that whatever ParseRule accepts is a well-formed,
// canonical rule that survives a round trip, and that whatever it refuses
// is refused with a *RuleError.
func FuzzParseRule(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		r, err := policy.ParseRule(s)
		if err != nil {
			var re *policy.RuleError
			if !errors.As(err, &re) || re.Rule != s {
				t.Fatalf("ParseRule(%q): got error %T %v, want *RuleError for the rule as written", s, err, err)
			}
			if r != (policy.Rule{}) {
				t.Fatalf("ParseRule(%q): got %#v with an error, want the zero Rule", s, r)
			}
			return
		}
		p := r.Path
		switch {
		case p == "" || p[0] != '/':
			t.Fatalf("ParseRule(%q): got Path %q, want an absolute path", s, p)
		case len(p) > policy.MaxPath:
			t.Fatalf("ParseRule(%q): got Path of %d bytes, want at most %d", s, len(p), policy.MaxPath)
		case strings.IndexByte(p, 0) >= 0:
			t.Fatalf("ParseRule(%q): got Path %q with a NUL byte, want none", s, p)
		case filepath.Clean(p) != p || !validPath(p):
			t.Fatalf("ParseRule(%q): got Path %q, want a clean path", s, p)
		case p == "/" && !r.Tree:
			t.Fatalf("ParseRule(%q): got an exact rule for \"/\", want a tree", s)
		case r.Modes != policy.Read:
			t.Fatalf("ParseRule(%q): got modes %v, want r (the only mode of this version)", s, r.Modes)
		}
		again, err := policy.ParseRule(r.String())
		if err != nil || again != r {
			t.Fatalf("ParseRule(%q).String() = %q re-parses to %#v, %v: want %#v, nil", s, r.String(), again, err, r)
		}
		// ParseRule refuses unclean paths instead of cleaning them, so a
		// rule that parses was written the canonical way.
		if written, canonical := rulePathPart(s), rulePathPart(r.String()); written != canonical {
			t.Fatalf("ParseRule(%q): accepted path %q as %q, want it refused as not clean", s, written, canonical)
		}
		// A parsed rule compiles, and allows its own path.
		pol, err := policy.New([]policy.Rule{r})
		if err != nil {
			t.Fatalf("New(ParseRule(%q)): got error %v, want nil", s, err)
		}
		d, err := pol.Check(r.Path, 0)
		if err != nil {
			t.Fatalf("Check(%q) under its own rule %s: got %v, want allowed", r.Path, r, err)
		}
		if want := ruleDir(r); pol.Dirs()[d.Dir] != want {
			t.Fatalf("Check(%q): got dir %q, want %q", r.Path, pol.Dirs()[d.Dir], want)
		}
	})
}

// rulePathPart is the PATH of a rule written [MODES:]PATH.
func rulePathPart(s string) string {
	if strings.HasPrefix(s, "/") {
		return s
	}
	_, p, _ := strings.Cut(s, ":")
	return p
}

// validPath is an independent statement of what CheckPath accepts.
func validPath(p string) bool {
	if p == "" || len(p) > policy.MaxPath || p[0] != '/' || strings.IndexByte(p, 0) >= 0 {
		return false
	}
	if p == "/" {
		return true
	}
	for c := range strings.SplitSeq(p[1:], "/") {
		if c == "" || c == "." || c == ".." {
			return false
		}
	}
	return true
}

// flagModel is an independent statement of what SanitizeFlags decides.
func flagModel(flags int) flagOutcome {
	const writeBits = unix.O_WRONLY | unix.O_RDWR | unix.O_CREAT | unix.O_EXCL | unix.O_TRUNC | unix.O_APPEND |
		unix.O_DSYNC | unix.O_SYNC | unix.O_TMPFILE&^unix.O_DIRECTORY
	switch {
	case flags&unix.O_ACCMODE == unix.O_ACCMODE:
		return bad
	case flags&^(acceptedFlags|writeBits) != 0:
		return bad
	case flags&writeBits != 0:
		return deny
	}
	return allow
}

var fuzzPolicies = [][]string{
	checkRules,
	{"/", "/home/user/", "/etc/passwd", "/a/b/c/"},
}

// FuzzCheck fuzzes requests against fixed policies and checks every
// decision against the reference matcher and the invariants an opener
// relies on.
func FuzzCheck(f *testing.F) {
	pols := make([]*policy.Policy, len(fuzzPolicies))
	for i, rules := range fuzzPolicies {
		pols[i] = mustParse(f, rules...)
	}
	f.Fuzz(func(t *testing.T, q string, flags int) {
		for _, p := range pols {
			rules, dirs := p.Rules(), p.Dirs()
			checkOne(t, p, rules, dirs, q, flags)
			// Also ask beneath every tree rule, so that most inputs reach
			// the tree walk instead of missing at once.
			if strings.HasPrefix(q, "/") {
				for _, r := range rules {
					if r.Tree && r.Path != "/" {
						checkOne(t, p, rules, dirs, r.Path+q, flags)
					}
				}
			}
		}
	})
}

func checkOne(t *testing.T, p *policy.Policy, rules []policy.Rule, dirs []string, q string, flags int) {
	t.Helper()
	d, err := p.Check(q, flags)

	pathErr := policy.CheckPath(q)
	if (pathErr == nil) != validPath(q) {
		t.Fatalf("CheckPath(%q): got %v, want valid=%v", q, pathErr, validPath(q))
	}
	ruleIdx, matched := -1, false
	if pathErr == nil {
		ruleIdx, matched = refMatch(rules, q)
	}
	fo := flagModel(flags)

	var wantKind policy.Kind
	var wantErrno syscall.Errno
	switch {
	case pathErr != nil:
		pr := refusal(t, pathErr)
		wantKind, wantErrno = policy.BadRequest, pr.Errno
		if pr.Kind != policy.BadRequest || (pr.Errno != syscall.EINVAL && pr.Errno != syscall.ENAMETOOLONG) {
			t.Fatalf("CheckPath(%q): got kind %d errno %v, want a bad request with EINVAL or ENAMETOOLONG", q, pr.Kind, pr.Errno)
		}
		if wantErrno == syscall.ENAMETOOLONG && len(q) <= policy.MaxPath {
			t.Fatalf("CheckPath(%q): got ENAMETOOLONG for %d bytes, want it only above %d", q, len(q), policy.MaxPath)
		}
	case fo == bad:
		wantKind, wantErrno = policy.BadRequest, syscall.EINVAL
	case fo == deny || !matched:
		wantKind, wantErrno = policy.Denied, syscall.EACCES
	}

	if wantKind != 0 {
		if err == nil {
			t.Fatalf("Check(%q, %s): got allowed %+v, want kind %d errno %v", q, policy.FlagString(flags), d, wantKind, wantErrno)
		}
		r := refusal(t, err)
		if r.Kind != wantKind || r.Errno != wantErrno {
			t.Fatalf("Check(%q, %s): got kind %d errno %v, want kind %d errno %v", q, policy.FlagString(flags), r.Kind, r.Errno, wantKind, wantErrno)
		}
		// Rule is -1 unless a rule was consulted and refused, which only a
		// denial on a matching path can be.
		if d.Rule != -1 && !(wantKind == policy.Denied && matched && d.Rule == ruleIdx) {
			t.Fatalf("Check(%q, %s) refused: got Rule %d, want -1", q, policy.FlagString(flags), d.Rule)
		}
		return
	}

	if err != nil {
		t.Fatalf("Check(%q, %s): got %v, want allowed by %s", q, policy.FlagString(flags), err, rules[ruleIdx])
	}
	if policy.CheckPath(q) != nil {
		t.Fatalf("Check(%q): allowed a path that CheckPath refuses", q)
	}
	if d.Rule != ruleIdx {
		t.Fatalf("Check(%q): got rule %d, want %d (%s)", q, d.Rule, ruleIdx, rules[ruleIdx])
	}
	if d.Dir < 0 || d.Dir >= len(dirs) {
		t.Fatalf("Check(%q): got Dir %d, want an index into %d dirs", q, d.Dir, len(dirs))
	}
	r, dir := rules[d.Rule], dirs[d.Dir]
	if dir != ruleDir(r) {
		t.Fatalf("Check(%q): got dir %q, want %q for rule %s", q, dir, ruleDir(r), r)
	}
	if r.Tree && !underTree(r.Path, q) || !r.Tree && r.Path != q {
		t.Fatalf("Check(%q): got rule %s, which does not hold the path by whole components", q, r)
	}
	if d.Exact != !r.Tree || d.Exact && strings.Contains(d.Rel, "/") {
		t.Fatalf("Check(%q): got Exact %v with Rel %q for rule %s, want Exact exactly for exact rules, with one component", q, d.Exact, d.Rel, r)
	}
	if !validRel(d.Rel) {
		t.Fatalf("Check(%q): got Rel %q, want \".\" or a clean relative path", q, d.Rel)
	}
	if (d.Rel == ".") != (r.Tree && q == r.Path) {
		t.Fatalf("Check(%q): got Rel %q under rule %s, want \".\" exactly for the tree's own directory", q, d.Rel, r)
	}
	if got := joinRel(dir, d.Rel); got != q {
		t.Fatalf("Check(%q): dir %q and Rel %q join to %q, want the request path", q, dir, d.Rel, got)
	}
	if got := path.Join(dir, d.Rel); got != q {
		t.Fatalf("Check(%q): path.Join(%q, %q) = %q, want the request path", q, dir, d.Rel, got)
	}
	if d.Flags&^acceptedFlags != 0 || d.Flags&forcedFlags != forcedFlags {
		t.Fatalf("Check(%q, %#x): got flags %s, want only accepted bits, O_CLOEXEC|O_NOCTTY included", q, flags, policy.FlagString(d.Flags))
	}
	if want := flags | forcedFlags; d.Flags != want {
		t.Fatalf("Check(%q, %#x): got flags %s, want %s", q, flags, policy.FlagString(d.Flags), policy.FlagString(want))
	}
	m, ok := p.Match(q)
	if want := (policy.Decision{Rule: d.Rule, Dir: d.Dir, Rel: d.Rel, Exact: d.Exact}); !ok || m != want {
		t.Fatalf("Match(%q): got %+v, %v, want %+v, true as Check decided", q, m, ok, want)
	}
}

// FuzzPolicyMatchPrefix checks that a tree rule "/a/" decides a request
// "/a"+b only when b starts a new component, and that an exact rule or a
// longer tree rule never reaches up or sideways.
func FuzzPolicyMatchPrefix(f *testing.F) {
	f.Fuzz(func(t *testing.T, a, b string) {
		// An empty a would make the rule "//", which is not a rule for a
		// named directory; FuzzParseRule covers how it parses.
		tree := "/" + a + "/"
		if _, err := policy.ParseRule(tree); err != nil || a == "" {
			return
		}
		req := "/" + a + b
		sameTree := b == "" || strings.HasPrefix(b, "/")

		p, err := policy.Parse([]string{tree})
		if err != nil {
			t.Fatalf("Parse(%q): got %v, want nil", tree, err)
		}
		d, err := p.Check(req, 0)
		if policy.CheckPath(req) != nil {
			if err == nil || refusal(t, err).Kind != policy.BadRequest {
				t.Fatalf("rule %q, Check(%q): got %+v, %v, want a bad request", tree, req, d, err)
			}
			return
		}
		if (err == nil) != sameTree {
			t.Fatalf("rule %q, Check(%q): got error %v, want allowed=%v", tree, req, err, sameTree)
		}
		if err == nil {
			wantRel := "."
			if b != "" {
				wantRel = b[1:]
			}
			if d.Rel != wantRel {
				t.Fatalf("rule %q, Check(%q): got Rel %q, want %q", tree, req, d.Rel, wantRel)
			}
		} else if refusal(t, err).Kind != policy.Denied {
			t.Fatalf("rule %q, Check(%q): got %v, want a denial", tree, req, err)
		}

		// The exact rule "/a" holds only "/a".
		exact := "/" + a
		pe := mustParse(t, exact)
		if _, err := pe.Check(req, 0); (err == nil) != (b == "") {
			t.Fatalf("rule %q, Check(%q): got error %v, want allowed=%v", exact, req, err, b == "")
		}

		// The tree "/a"+b+"/" never holds its parent "/a", nor a sibling
		// beneath "/a" unless that sibling is inside it.
		longer := req + "/"
		if _, err := policy.ParseRule(longer); b != "" && err == nil {
			pl := mustParse(t, longer)
			for _, q := range []string{exact, exact + "/sibling"} {
				if _, err := pl.Check(q, 0); err == nil && !underTree(req, q) {
					t.Fatalf("rule %q, Check(%q): got allowed, want denied", longer, q)
				}
			}
		}
	})
}
