//go:build linux

package policy_test

import (
	"errors"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/policy"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/.

// ruleRefused reports whether fn (ParseRule or ParseLine) refused rule s. A
// refusal must be a *RuleError for the rule as written, with the zero Rule.
func ruleRefused(t *testing.T, fn, s string, r policy.Rule, err error) bool {
	t.Helper()
	if err == nil {
		return false
	}
	var re *policy.RuleError
	if !errors.As(err, &re) || re.Rule != s {
		t.Fatalf("%s(%q): got error %T %v, want *RuleError for the rule as written", fn, s, err, err)
	}
	if r != (policy.Rule{}) {
		t.Fatalf("%s(%q): got %#v with an error, want the zero Rule", fn, s, r)
	}
	return true
}

// FuzzParseRule checks that whatever ParseRule accepts is a well-formed,
// canonical rule that survives a round trip through its String form (the
// policy-file form, read by ParseLine), and that whatever it refuses is
// refused with a *RuleError.
func FuzzParseRule(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		r, err := policy.ParseRule(s)
		if ruleRefused(t, "ParseRule", s, r, err) {
			return
		}
		checkWellFormed(t, "ParseRule", s, r)
		// The command-line form has no options.
		if r.CreateMode != 0 || r.UID != policy.NoOwner || r.GID != policy.NoOwner {
			t.Fatalf("ParseRule(%q): got options %#o %d:%d, want none", s, r.CreateMode, r.UID, r.GID)
		}
		// ParseRule refuses unclean paths instead of cleaning them, so a
		// rule that parses was written the canonical way.
		if written, canonical := rulePathPart(s), rulePath(r); written != canonical {
			t.Fatalf("ParseRule(%q): accepted path %q as %q, want it refused as not clean", s, written, canonical)
		}
	})
}

// checkWellFormed checks what every parsed rule must be, and that it round
// trips, compiles, and decides requests for its own path as the model says.
func checkWellFormed(t *testing.T, fn, s string, r policy.Rule) {
	t.Helper()
	str := r.String()
	again, err := policy.ParseLine(str, nil)
	if err != nil || again != r {
		t.Fatalf("%s(%q).String() = %q re-parses to %#v, %v: want %#v, nil", fn, s, str, again, err, r)
	}
	if again.String() != str {
		t.Fatalf("%s(%q): String %q, then %q after a round trip, want it stable", fn, s, str, again.String())
	}
	if strings.ContainsAny(str, "\n\r\x00") {
		t.Fatalf("%s(%q): String %q holds a line break or NUL, want one line", fn, s, str)
	}
	pol, err := policy.New([]policy.Rule{r})
	if err != nil {
		t.Fatalf("New(%s(%q)): got error %v, want nil", fn, s, err)
	}
	if r.Path == "" && r.Modes == 0 {
		return // not a path rule (a listen rule): nothing more to check here
	}
	p := r.Path
	switch {
	case p == "" || p[0] != '/':
		t.Fatalf("%s(%q): got Path %q, want an absolute path", fn, s, p)
	case len(p) > policy.MaxPath:
		t.Fatalf("%s(%q): got Path of %d bytes, want at most %d", fn, s, len(p), policy.MaxPath)
	case strings.IndexByte(p, 0) >= 0:
		t.Fatalf("%s(%q): got Path %q with a NUL byte, want none", fn, s, p)
	case filepath.Clean(p) != p || !validPath(p):
		t.Fatalf("%s(%q): got Path %q, want a clean path", fn, s, p)
	case p == "/" && !r.Tree:
		t.Fatalf("%s(%q): got an exact rule for \"/\", want a tree", fn, s)
	case r.Modes == 0 || r.Modes&^(rd|wr|ap|cr) != 0:
		t.Fatalf("%s(%q): got modes %v, want a non-empty subset of rwac", fn, s, r.Modes)
	case r.Modes&wr != 0 && r.Modes&ap != 0:
		t.Fatalf("%s(%q): got modes %v, want never both w and a", fn, s, r.Modes)
	case r.CreateMode&^0o666 != 0:
		t.Fatalf("%s(%q): got CreateMode %#o, want nothing outside 0666", fn, s, r.CreateMode)
	case r.Modes&cr == 0 && (r.CreateMode != 0 || r.UID != policy.NoOwner || r.GID != policy.NoOwner):
		t.Fatalf("%s(%q): got options %#o %d:%d without c, want none", fn, s, r.CreateMode, r.UID, r.GID)
	case r.UID < policy.NoOwner || r.GID < policy.NoOwner:
		t.Fatalf("%s(%q): got owner %d:%d, want ids or NoOwner", fn, s, r.UID, r.GID)
	case r.UID == policy.NoOwner && r.GID != policy.NoOwner:
		t.Fatalf("%s(%q): got a group %d without a user, which the language cannot write", fn, s, r.GID)
	case r.Source != "":
		t.Fatalf("%s(%q): got Source %q, want none", fn, s, r.Source)
	}
	// A parsed rule decides its own path as the model says.
	for _, flags := range probeFlags {
		d, err := pol.Check(r.Path, flags, 0o7777)
		got := allowV
		if err != nil {
			rf := refusal(t, err)
			got = verdict{rf.Kind, rf.Errno}
		}
		if want := model(flags, r.Modes, !r.Tree); got != want {
			t.Fatalf("rule %s, Check(%q, %s): got %v (%v), want %v", r, r.Path, policy.FlagString(flags), got, err, want)
		}
		if err != nil {
			continue
		}
		if want := ruleDir(r); pol.Dirs()[d.Dir] != want {
			t.Fatalf("Check(%q): got dir %q, want %q", r.Path, pol.Dirs()[d.Dir], want)
		}
		if creating(flags) {
			cm := r.CreateMode
			if cm == 0 {
				cm = 0o666
			}
			if d.Mode != cm || d.UID != r.UID || d.GID != r.GID {
				t.Fatalf("rule %s, Check(%q, %s, 07777): got mode %#o owner %d:%d, want %#o %d:%d", r, r.Path, policy.FlagString(flags), d.Mode, d.UID, d.GID, cm, r.UID, r.GID)
			}
		} else if d.Mode != 0 || d.UID != policy.NoOwner || d.GID != policy.NoOwner {
			t.Fatalf("rule %s, Check(%q, %s): got mode %#o owner %d:%d without creating, want 0 and no owner", r, r.Path, policy.FlagString(flags), d.Mode, d.UID, d.GID)
		}
	}
}

// probeFlags are the requests checkWellFormed asks of every parsed rule.
var probeFlags = []int{
	unix.O_RDONLY,
	unix.O_WRONLY,
	unix.O_RDWR,
	unix.O_WRONLY | unix.O_APPEND,
	unix.O_RDWR | unix.O_APPEND,
	unix.O_WRONLY | unix.O_TRUNC,
	unix.O_WRONLY | unix.O_APPEND | unix.O_TRUNC,
	unix.O_RDONLY | unix.O_CREAT,
	unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL,
	unix.O_WRONLY | unix.O_APPEND | unix.O_CREAT,
	unix.O_RDWR | unix.O_TMPFILE,
	unix.O_WRONLY | unix.O_APPEND | unix.O_TMPFILE,
	unix.O_RDONLY | unix.O_DIRECTORY,
}

// rulePathPart is the PATH of a rule written [MODES:]PATH.
func rulePathPart(s string) string {
	if strings.HasPrefix(s, "/") {
		return s
	}
	_, p, _ := strings.Cut(s, ":")
	return p
}

// rulePath is the path of r as a rule writes it, unquoted: with a
// trailing slash for a tree.
func rulePath(r policy.Rule) string {
	if r.Tree && r.Path != "/" {
		return r.Path + "/"
	}
	return r.Path
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

// FuzzParseLine checks the policy-file form: whatever ParseLine accepts is
// well formed and comes back unchanged from its String form; whatever it
// refuses is refused with a *RuleError, and never a panic.
func FuzzParseLine(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		res := newFakeResolver()
		r, err := policy.ParseLine(s, res)
		rn, errn := policy.ParseLine(s, nil)
		if errn == nil && (err != nil || r != rn) {
			t.Fatalf("ParseLine(%q): got %#v, %v without a resolver, %#v, %v with one: want the same", s, rn, errn, r, err)
		}
		if ruleRefused(t, "ParseLine", s, r, err) {
			return
		}
		checkWellFormed(t, "ParseLine", s, r)
	})
}

// FuzzParseFile checks that ParseFile never panics, that every error is a
// *FileError at a line the file has, and that every rule it returns names
// its line, is what that line alone parses to, and re-parses from its
// String form.
func FuzzParseFile(f *testing.F) {
	const name = "fuzz.policy"
	f.Fuzz(func(t *testing.T, data []byte) {
		res := newFakeResolver()
		lines := strings.Split(string(data), "\n")
		rules, err := policy.ParseFile(name, data, res)
		if err != nil {
			var fe *policy.FileError
			if !errors.As(err, &fe) {
				t.Fatalf("ParseFile(%q): got %T %v, want *FileError", data, err, err)
			}
			if fe.File != name || fe.Line < 1 || fe.Line > len(lines) {
				t.Fatalf("ParseFile(%q): got error at %s:%d, want %s and a line in 1..%d", data, fe.File, fe.Line, name, len(lines))
			}
			if rules != nil {
				t.Fatalf("ParseFile(%q): got %d rules with the error, want none", data, len(rules))
			}
			// The line it names is bad on its own.
			if _, err := policy.ParseFile(name, []byte(lines[fe.Line-1]), res); err == nil {
				t.Fatalf("ParseFile(%q): error %v, but line %d alone parses", data, fe, fe.Line)
			}
			return
		}
		last := 0
		for i, r := range rules {
			file, n, ok := strings.Cut(r.Source, ":")
			line, aerr := strconv.Atoi(n)
			if !ok || file != name || aerr != nil || n != strconv.Itoa(line) {
				t.Fatalf("rule %d: got Source %q, want %s:N", i, r.Source, name)
			}
			if line <= last || line > len(lines) {
				t.Fatalf("rule %d: got line %d after line %d of %d, want increasing lines of the file", i, line, last, len(lines))
			}
			last = line
			one, err := policy.ParseFile(name, []byte(lines[line-1]), res)
			if err != nil || len(one) != 1 {
				t.Fatalf("line %d (%q) alone: got %v, %v, want one rule", line, lines[line-1], one, err)
			}
			one[0].Source = r.Source
			if one[0] != r {
				t.Fatalf("line %d alone: got %#v, want %#v", line, one[0], r)
			}
			r.Source = ""
			if again, err := policy.ParseLine(r.String(), nil); err != nil || again != r {
				t.Fatalf("rule %d: ParseLine(%q) = %#v, %v, want %#v", i, r.String(), again, err, r)
			}
		}
		// The lines that hold no rule are blank or comments: dropping
		// them and writing the rules back gives the same rules.
		var out []string
		for _, r := range rules {
			r.Source = ""
			out = append(out, r.String())
		}
		back, err := policy.ParseFile(name, []byte(strings.Join(out, "\n")), nil)
		if err != nil || len(back) != len(rules) {
			t.Fatalf("ParseFile of the rules' Strings %q: got %d rules, %v, want %d", out, len(back), err, len(rules))
		}
		for i := range back {
			back[i].Source, rules[i].Source = "", ""
			if back[i] != rules[i] {
				t.Fatalf("rule %d written back: got %#v, want %#v", i, back[i], rules[i])
			}
		}
	})
}

// fuzzPolicies are the policies FuzzCheck asks; the second and third hold
// every kind of mode and option. Rules nest only where the inner rule
// grants at least what the tree around it does (New refuses the rest).
var fuzzPolicies = [][]string{
	checkRules,
	{"r:/", "r:/home/user/", "r:/etc/passwd", "r:/a/b/c/"},
	{
		"ra:/r/",
		"r:/home/",
		"rwc:/home/user/ mode=0640 owner=1000:1000",
		"w:/etc/passwd",
		"a:/a/",
		"ac:/a/b/c/ mode=0600 owner=7",
		"c:/c/",
		"rwc:/x",
		"rc:/x/",
		"wc:/w/ mode=0444",
		"a:/log",
		"r:/h/ hardlinks=yes",
		"rwc:/h/in/ hardlinks=yes",
	},
}

// FuzzCheck fuzzes requests against fixed policies and checks every
// decision against the reference matcher, the flag model and the
// invariants an opener relies on.
func FuzzCheck(f *testing.F) {
	pols := make([]*policy.Policy, len(fuzzPolicies))
	for i, rules := range fuzzPolicies {
		pols[i] = mustParseLines(f, rules...)
	}
	f.Fuzz(func(t *testing.T, q string, flags int) {
		// The requested creation mode: fixed per input, with the bits
		// that must be dropped often set.
		mode := uint32(len(q)*0o4421+flags) & 0o7777
		for _, p := range pols {
			rules, dirs := p.Rules(), p.Dirs()
			checkOne(t, p, rules, dirs, q, flags, mode)
			// Also ask beneath every tree rule, so that most inputs reach
			// the tree walk instead of missing at once.
			if strings.HasPrefix(q, "/") {
				for _, r := range rules {
					if r.Tree && r.Path != "/" {
						checkOne(t, p, rules, dirs, r.Path+q, flags, mode)
					}
				}
			}
		}
	})
}

func checkOne(t *testing.T, p *policy.Policy, rules []policy.Rule, dirs []string, q string, flags int, mode uint32) {
	t.Helper()
	d, err := p.Check(q, flags, mode)

	pathErr := policy.CheckPath(q)
	if (pathErr == nil) != validPath(q) {
		t.Fatalf("CheckPath(%q): got %v, want valid=%v", q, pathErr, validPath(q))
	}
	ruleIdx, matched := -1, false
	if pathErr == nil {
		ruleIdx, matched = refMatch(rules, q)
	}

	var want verdict
	wantRule := ruleIdx
	switch {
	case pathErr != nil:
		pr := refusal(t, pathErr)
		want, wantRule = verdict{policy.BadRequest, pr.Errno}, -1
		if pr.Kind != policy.BadRequest || (pr.Errno != syscall.EINVAL && pr.Errno != syscall.ENAMETOOLONG) {
			t.Fatalf("CheckPath(%q): got kind %d errno %v, want a bad request with EINVAL or ENAMETOOLONG", q, pr.Kind, pr.Errno)
		}
		if pr.Errno == syscall.ENAMETOOLONG && len(q) <= policy.MaxPath {
			t.Fatalf("CheckPath(%q): got ENAMETOOLONG for %d bytes, want it only above %d", q, len(q), policy.MaxPath)
		}
	case flagsBad(flags):
		want, wantRule = badV, -1
	case !matched:
		want, wantRule = denyV, -1
	default:
		want = model(flags, rules[ruleIdx].Modes, !rules[ruleIdx].Tree)
	}

	if want != allowV {
		if err == nil {
			t.Fatalf("Check(%q, %s): got allowed %+v, want %v", q, policy.FlagString(flags), d, want)
		}
		r := refusal(t, err)
		if got := (verdict{r.Kind, r.Errno}); got != want {
			t.Fatalf("Check(%q, %s): got %v (%v), want %v", q, policy.FlagString(flags), got, err, want)
		}
		if d.Rule != wantRule {
			t.Fatalf("Check(%q, %s) refused: got Rule %d, want %d", q, policy.FlagString(flags), d.Rule, wantRule)
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
	if d.Flags&^knownFlags != 0 || d.Flags&forcedFlags != forcedFlags {
		t.Fatalf("Check(%q, %#x): got flags %s, want only accepted bits, O_CLOEXEC|O_NOCTTY included", q, flags, policy.FlagString(d.Flags))
	}
	if want := flags | forcedFlags; d.Flags != want {
		t.Fatalf("Check(%q, %#x): got flags %s, want %s", q, flags, policy.FlagString(d.Flags), policy.FlagString(want))
	}
	wantMode, wantUID, wantGID := uint32(0), policy.NoOwner, policy.NoOwner
	if creating(flags) {
		cm := r.CreateMode
		if cm == 0 {
			cm = 0o666
		}
		wantMode, wantUID, wantGID = mode&cm, r.UID, r.GID
	}
	if d.Mode != wantMode || d.UID != wantUID || d.GID != wantGID {
		t.Fatalf("Check(%q, %s, %#o) under %s: got mode %#o owner %d:%d, want %#o %d:%d", q, policy.FlagString(flags), mode, r, d.Mode, d.UID, d.GID, wantMode, wantUID, wantGID)
	}
	if d.Mode&^0o666 != 0 {
		t.Fatalf("Check(%q): got mode %#o, want nothing outside 0666", q, d.Mode)
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
		d, err := p.Check(req, 0, 0)
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
		if _, err := pe.Check(req, 0, 0); (err == nil) != (b == "") {
			t.Fatalf("rule %q, Check(%q): got error %v, want allowed=%v", exact, req, err, b == "")
		}

		// The tree "/a"+b+"/" never holds its parent "/a", nor a sibling
		// beneath "/a" unless that sibling is inside it.
		longer := req + "/"
		if _, err := policy.ParseRule(longer); b != "" && err == nil {
			pl := mustParse(t, longer)
			for _, q := range []string{exact, exact + "/sibling"} {
				if _, err := pl.Check(q, 0, 0); err == nil && !underTree(req, q) {
					t.Fatalf("rule %q, Check(%q): got allowed, want denied", longer, q)
				}
			}
		}
	})
}
