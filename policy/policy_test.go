//go:build linux

package policy_test

import (
	"errors"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/privsep-go/privsep/policy"
)

func mustParse(t testing.TB, rules ...string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse(rules)
	if err != nil {
		t.Fatalf("Parse(%q): got error %v, want nil", rules, err)
	}
	return p
}

func mustParseLines(t testing.TB, lines ...string) *policy.Policy {
	t.Helper()
	p, err := policy.ParseLines(lines)
	if err != nil {
		t.Fatalf("ParseLines(%q): got error %v, want nil", lines, err)
	}
	return p
}

// refusal returns err as a *policy.Refusal, failing the test if it is not one.
func refusal(t testing.TB, err error) *policy.Refusal {
	t.Helper()
	var r *policy.Refusal
	if !errors.As(err, &r) {
		t.Fatalf("got error %T %v, want *policy.Refusal", err, err)
	}
	return r
}

// ruleDir is the directory a rule's requests are opened beneath.
func ruleDir(r policy.Rule) string {
	if r.Tree {
		return r.Path
	}
	return path.Dir(r.Path)
}

// underTree reports whether p is root or beneath it, by whole components.
func underTree(root, p string) bool {
	return root == "/" || p == root || strings.HasPrefix(p, root+"/")
}

// refMatch is a slow reference for Match: an exact rule for p, else the
// deepest tree rule that holds p.
func refMatch(rules []policy.Rule, p string) (int, bool) {
	for i, r := range rules {
		if !r.Tree && r.Path == p {
			return i, true
		}
	}
	best := -1
	for i, r := range rules {
		if r.Tree && underTree(r.Path, p) && (best < 0 || len(r.Path) > len(rules[best].Path)) {
			best = i
		}
	}
	return best, best >= 0
}

// joinRel rebuilds the requested path from a decision's directory and Rel.
func joinRel(dir, rel string) string {
	switch {
	case rel == ".":
		return dir
	case dir == "/":
		return "/" + rel
	default:
		return dir + "/" + rel
	}
}

// validRel reports whether rel is safe to hand to openat2 beneath a
// directory: "." or a clean relative path without "." or ".." components.
func validRel(rel string) bool {
	if rel == "." {
		return true
	}
	if rel == "" || rel[0] == '/' || strings.HasSuffix(rel, "/") {
		return false
	}
	for c := range strings.SplitSeq(rel, "/") {
		if c == "" || c == "." || c == ".." {
			return false
		}
	}
	return true
}

func TestParseDuplicates(t *testing.T) {
	tests := [][]string{
		{"/a", "r:/a"},
		{"/a/", "r:/a/"},
		{"/", "r:/"},
		{"/etc/hostname", "/srv/", "/etc/hostname"},
		// Modes do not make a rule different: one path, one rule.
		{"r:/a", "rw:/a"},
		{"rwc:/a/", "ra:/a/"},
	}
	for _, rules := range tests {
		p, err := policy.Parse(rules)
		if err == nil {
			t.Errorf("Parse(%q): got %v, nil, want a duplicate-rule error", rules, p.Strings())
			continue
		}
		var re *policy.RuleError
		if !errors.As(err, &re) || !strings.Contains(re.Why, "duplicate") {
			t.Errorf("Parse(%q): got error %v, want a *RuleError about a duplicate", rules, err)
		}
	}
	// An exact rule and a tree rule on the same path are different rules.
	if _, err := policy.Parse([]string{"/a", "/a/"}); err != nil {
		t.Errorf(`Parse("/a", "/a/"): got error %v, want nil`, err)
	}
}

func TestParseReportsBadRule(t *testing.T) {
	_, err := policy.Parse([]string{"/ok", "w:/w", "wa:/b", "/also-ok"})
	var re *policy.RuleError
	if !errors.As(err, &re) {
		t.Fatalf("Parse: got error %v, want *RuleError", err)
	}
	if re.Rule != "wa:/b" {
		t.Errorf("RuleError.Rule: got %q, want %q", re.Rule, "wa:/b")
	}
}

func TestParseLinesDuplicates(t *testing.T) {
	_, err := policy.ParseLines([]string{"rwc:/a/ mode=0600", "r:/b", "r:/a/"})
	var re *policy.RuleError
	if !errors.As(err, &re) || !strings.Contains(re.Why, "duplicates rule 1") {
		t.Fatalf("ParseLines: got error %v, want a *RuleError naming rule 1", err)
	}
	// Without Source, New says "rule N".
	if !strings.Contains(err.Error(), "rwc:/a/ mode=0600") {
		t.Errorf("Error(): got %q, want it to show the duplicated rule", err)
	}
	if _, err := policy.ParseLines([]string{"r:/ok", "r:/a owner=0"}); err == nil {
		t.Error("ParseLines with a bad line: got nil error")
	}
}

func TestNewRefusesMalformedRules(t *testing.T) {
	tests := []struct {
		name string
		rule policy.Rule
	}{
		{"exact root", rule("/", false, rd)},
		// String() is "r:/", but the rule is not the root tree.
		{"empty tree", rule("", true, rd)},
		{"empty exact", rule("", false, rd)},
		// String() is "r:/a/", which is a different rule (the tree "/a").
		{"exact with trailing slash", rule("/a/", false, rd)},
		{"tree with trailing slash", rule("/a/", true, rd)},
		{"relative", rule("a", false, rd)},
		{"not clean", rule("/a/../b", false, rd)},
		{"NUL", rule("/a\x00", false, rd)},
		{"no modes", rule("/a", false, 0)},
		{"unknown mode", rule("/a", false, rd|0x10)},
		{"w and a", rule("/a", false, wr|ap)},
		{"too long", rule("/"+strings.Repeat("a", policy.MaxPath), false, rd)},
		// Options must be what ParseLine could have made.
		{"mode outside 0666", withOpts(rule("/a", true, rd|wr|cr), 0o755, policy.NoOwner, policy.NoOwner)},
		{"setuid mode", withOpts(rule("/a", true, rd|wr|cr), 0o4644, policy.NoOwner, policy.NoOwner)},
		{"mode without c", withOpts(rule("/a", true, rd|wr), 0o600, policy.NoOwner, policy.NoOwner)},
		{"owner without c", withOpts(rule("/a", true, rd|wr), 0, 1000, policy.NoOwner)},
		{"group without c", withOpts(rule("/a", true, rd|wr), 0, 1000, 1000)},
		{"negative uid", withOpts(rule("/a", true, rd|wr|cr), 0, -2, policy.NoOwner)},
		{"negative gid", withOpts(rule("/a", true, rd|wr|cr), 0, 0, -5)},
		{"uid beyond 32 bits", withOpts(rule("/a", true, rd|wr|cr), 0, 1<<32-1, policy.NoOwner)},
		// The language has no owner=:GROUP, so a rule with a group but no
		// user cannot be written, and New refuses it.
		{"group without user", withOpts(rule("/a", true, rd|wr|cr), 0, policy.NoOwner, 100)},
		// The zero Rule's UID and GID are 0 (root), not NoOwner: a
		// hand-built read rule that forgets them is not well formed.
		{"zero owner on a read rule", policy.Rule{Path: "/a", Modes: policy.Read}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := policy.New([]policy.Rule{tt.rule})
			if err == nil {
				t.Fatalf("New(%#v): got policy %q with Dirs %q, nil, want a *RuleError", tt.rule, p.Strings(), p.Dirs())
			}
			var re *policy.RuleError
			if !errors.As(err, &re) {
				t.Errorf("New(%#v): got error %T %v, want *RuleError", tt.rule, err, err)
			}
		})
	}
}

func TestNewCopiesInput(t *testing.T) {
	rules := []policy.Rule{rule("/a", false, rd)}
	p, err := policy.New(rules)
	if err != nil {
		t.Fatalf("New: got error %v, want nil", err)
	}
	rules[0].Path = "/b"
	if _, err := p.Check("/a", 0, 0); err != nil {
		t.Errorf(`after changing New's input, Check("/a"): got %v, want nil`, err)
	}
	got := p.Rules()
	got[0].Path = "/c"
	if r := p.Rules()[0].Path; r != "/a" {
		t.Errorf("after changing Rules()' result, Rules()[0].Path: got %q, want %q", r, "/a")
	}
	dirs := p.Dirs()
	dirs[0] = "/evil"
	if d := p.Dirs()[0]; d != "/" {
		t.Errorf("after changing Dirs()' result, Dirs()[0]: got %q, want %q", d, "/")
	}
}

func TestDirs(t *testing.T) {
	rules := []string{
		"/etc/hostname",
		"/etc/hosts",
		"/etc/",
		"/srv/www/",
		"/srv/www/index.html",
		"/x",
		"/",
		"/a/b/c/",
		"/a/b/c",
	}
	p := mustParse(t, rules...)
	got := p.Dirs()
	want := []string{"/", "/a/b", "/a/b/c", "/etc", "/srv/www"}
	sorted := slices.Sorted(slices.Values(got))
	if !slices.Equal(sorted, want) {
		t.Fatalf("Dirs(): got %q, want (in any order) %q", got, want)
	}
	// Each rule's decision points at its own directory. A tree rule is
	// asked for a child, since "/a/b/c" itself has an exact rule too.
	for i, r := range p.Rules() {
		q := r.Path
		if r.Tree {
			q = joinRel(r.Path, "child")
		}
		d, err := p.Check(q, 0, 0)
		if err != nil {
			t.Errorf("Check(%q): got %v, want nil", q, err)
			continue
		}
		if d.Rule != i {
			t.Errorf("Check(%q).Rule: got %d, want %d", q, d.Rule, i)
		}
		if gotDir, wantDir := got[d.Dir], ruleDir(r); gotDir != wantDir {
			t.Errorf("Check(%q): got Dirs()[%d] = %q, want %q", q, d.Dir, gotDir, wantDir)
		}
	}
}

func TestDirsExactAtRoot(t *testing.T) {
	p := mustParse(t, "/x")
	if got, want := p.Dirs(), []string{"/"}; !slices.Equal(got, want) {
		t.Fatalf("Dirs(): got %q, want %q", got, want)
	}
	d, err := p.Check("/x", 0, 0)
	if err != nil {
		t.Fatalf(`Check("/x"): got %v, want nil`, err)
	}
	if d.Rel != "x" || p.Dirs()[d.Dir] != "/" {
		t.Errorf(`Check("/x"): got dir %q rel %q, want dir "/" rel "x"`, p.Dirs()[d.Dir], d.Rel)
	}
}

func TestStringsRoundTrip(t *testing.T) {
	in := []string{"/etc/hostname", "r:/srv/www/", "/", "/x", "/x/", "cwr:/up/", "ar:/log", "/a b"}
	p := mustParse(t, in...)
	want := []string{"r:/etc/hostname", "r:/srv/www/", "r:/", "r:/x", "r:/x/", "rwc:/up/", "ra:/log", `r:"/a b"`}
	if got := p.Strings(); !slices.Equal(got, want) {
		t.Fatalf("Strings(): got %q, want %q", got, want)
	}
	// Strings is the form the opener receives: ParseLines reads it.
	q := mustParseLines(t, p.Strings()...)
	if got, want := q.Rules(), p.Rules(); !slices.Equal(got, want) {
		t.Errorf("Parse(Strings()).Rules(): got %#v, want %#v", got, want)
	}
}
