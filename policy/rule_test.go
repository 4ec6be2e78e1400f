package policy_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/privsep-go/privsep/policy"
)

// rule builds the Rule that the parsers should return: no options, no owner.
func rule(path string, tree bool, modes policy.Mode) policy.Rule {
	return policy.Rule{Path: path, Tree: tree, Modes: modes, UID: policy.NoOwner, GID: policy.NoOwner}
}

// withOpts returns r with a creation mode and an owner.
func withOpts(r policy.Rule, mode uint32, uid, gid int64) policy.Rule {
	r.CreateMode, r.UID, r.GID = mode, uid, gid
	return r
}

func withLinks(r policy.Rule) policy.Rule {
	r.Hardlinks = true
	return r
}

// withDirs returns r with dirs=yes.
func withDirs(r policy.Rule) policy.Rule {
	r.Dirs = true
	return r
}

const (
	rd = policy.Read
	wr = policy.Write
	ap = policy.Append
	cr = policy.Create
)

func TestParseRuleValid(t *testing.T) {
	long := "/" + strings.Repeat("a", policy.MaxPath-1) // exactly MaxPath bytes
	tests := []struct {
		in   string
		want policy.Rule
		str  string // want String()
	}{
		{"/etc/hostname", rule("/etc/hostname", false, rd), "r:/etc/hostname"},
		{"r:/etc/hostname", rule("/etc/hostname", false, rd), "r:/etc/hostname"},
		{"/srv/www/", rule("/srv/www", true, rd), "r:/srv/www/"},
		{"r:/srv/www/", rule("/srv/www", true, rd), "r:/srv/www/"},
		{"/", rule("/", true, rd), "r:/"},
		{"r:/", rule("/", true, rd), "r:/"},
		{"/x", rule("/x", false, rd), "r:/x"},
		{"/x/", rule("/x", true, rd), "r:/x/"},
		// A colon after the first slash belongs to the path.
		{"/a:b", rule("/a:b", false, rd), "r:/a:b"},
		{"r:/a:b/", rule("/a:b", true, rd), "r:/a:b/"},
		// Names that only look like dot components.
		{"/...", rule("/...", false, rd), "r:/..."},
		{"/a/..b/", rule("/a/..b", true, rd), "r:/a/..b/"},
		{"/a/b..", rule("/a/b..", false, rd), "r:/a/b.."},
		{"/.hidden", rule("/.hidden", false, rd), "r:/.hidden"},
		// Bytes that are not UTF-8, spaces and newlines are legal in names.
		// The command-line form takes them as written; String writes the
		// policy-file form, which quotes them.
		{"/data/\xff\xfe/", rule("/data/\xff\xfe", true, rd), `r:"/data/\xff\xfe/"`},
		{"/a b/c\n", rule("/a b/c\n", false, rd), `r:"/a b/c\n"`},
		{"/a#b", rule("/a#b", false, rd), `r:"/a#b"`},
		{`/a"b`, rule(`/a"b`, false, rd), `r:"/a\"b"`},
		// The limit counts the path, not the mode prefix.
		{long, rule(long, false, rd), "r:" + long},
		{"r:" + long, rule(long, false, rd), "r:" + long},
		// Every mode set that does not hold both w and a; String writes
		// the letters in the order r, w, a, c.
		{"w:/a", rule("/a", false, wr), "w:/a"},
		{"a:/a", rule("/a", false, ap), "a:/a"},
		{"c:/a", rule("/a", false, cr), "c:/a"},
		{"rw:/a", rule("/a", false, rd|wr), "rw:/a"},
		{"wr:/a/", rule("/a", true, rd|wr), "rw:/a/"},
		{"ra:/log", rule("/log", false, rd|ap), "ra:/log"},
		{"ar:/log", rule("/log", false, rd|ap), "ra:/log"},
		{"rc:/a/", rule("/a", true, rd|cr), "rc:/a/"},
		{"wc:/a/", rule("/a", true, wr|cr), "wc:/a/"},
		{"cw:/a/", rule("/a", true, wr|cr), "wc:/a/"},
		{"ac:/a/", rule("/a", true, ap|cr), "ac:/a/"},
		{"rwc:/a/", rule("/a", true, rd|wr|cr), "rwc:/a/"},
		{"cwr:/a/", rule("/a", true, rd|wr|cr), "rwc:/a/"},
		{"rac:/a/", rule("/a", true, rd|ap|cr), "rac:/a/"},
		{"car:/", rule("/", true, rd|ap|cr), "rac:/"},
		// The command-line form has no options: all after the colon is the
		// path, spaces and "mode=" included.
		{"rwc:/a mode=0600", rule("/a mode=0600", false, rd|wr|cr), `rwc:"/a mode=0600"`},
	}
	for _, tt := range tests {
		t.Run(shortName(tt.in), func(t *testing.T) {
			got, err := policy.ParseRule(tt.in)
			if err != nil {
				t.Fatalf("ParseRule(%q): got error %v, want %#v", tt.in, err, tt.want)
			}
			if got != tt.want {
				t.Fatalf("ParseRule(%q): got %#v, want %#v", tt.in, got, tt.want)
			}
			if s := got.String(); s != tt.str {
				t.Errorf("String(): got %q, want %q", s, tt.str)
			}
			// String is the policy-file form: it goes back through
			// ParseLine, not ParseRule.
			again, err := policy.ParseLine(got.String(), nil)
			if err != nil || again != got {
				t.Errorf("ParseLine(String()) = %#v, %v: got a different rule, want %#v, nil", again, err, got)
			}
		})
	}
}

func TestParseRuleRefused(t *testing.T) {
	tooLong := "/" + strings.Repeat("a", policy.MaxPath) // MaxPath+1 bytes
	tests := []struct {
		in  string
		why string // a word the reason must contain
	}{
		{"", "absolute"},
		{"etc/hostname", "absolute"},
		{"hostname", "absolute"},
		{"r:etc/hostname", "absolute"},
		{"r:./a", "absolute"},
		{"r:r:/a", "absolute"},
		{"r:", "empty path"},
		{":/x", "empty mode"},
		{":", "empty mode"},
		{"x:/a", "unknown mode"},
		{"R:/a", "unknown mode"},
		{"W:/a", "unknown mode"},
		{" :/a", "unknown mode"},
		{"r,r:/a", "unknown mode"},
		{"r w:/a", "unknown mode"},
		{"rr:/a", "twice"},
		{"ww:/a", "twice"},
		{"cc:/a/", "twice"},
		{"rwcr:/a", "twice"},
		// a is append only; w would allow what a forbids.
		{"wa:/a", "contradict"},
		{"aw:/a", "contradict"},
		{"rwa:/a/", "contradict"},
		{"wac:/a/", "contradict"},
		{"rwac:/", "contradict"},
		{"carw:/a", "contradict"},
		// The command-line form does not quote.
		{`"/a b"`, "absolute"},
		{`r:"/a"`, "absolute"},
		{"/a/../b", "not clean"},
		{"/a/./b", "not clean"},
		{"//a", "not clean"},
		{"/a//b/", "not clean"},
		{"/a/b//", "not clean"},
		{"/a/b/.", "not clean"},
		{"/a/b/./", "not clean"},
		{"/a/..", "not clean"},
		{"/a/../", "not clean"},
		{"/..", "not clean"},
		{"/../", "not clean"},
		{"/../a", "not clean"},
		{"/.", "not clean"},
		{"/./", "not clean"},
		{"///", "not clean"},
		{"r:/a/../b", "not clean"},
		{"rwc:/a/../b/", "not clean"},
		// "//" is "/" written unclean, just as "/a/b//" is "/a/b/"; a rule
		// built as "/$DIR/" with an empty DIR must not grant the whole
		// filesystem.
		{"//", "not clean"},
		{"r://", "not clean"},
		{"rwc://", "not clean"},
		{"/a\x00b", "NUL"},
		{"r:/\x00", "NUL"},
		{"/a/\x00/", "NUL"},
		{tooLong, "longer than"},
		{"r:" + tooLong, "longer than"},
		{tooLong[:policy.MaxPath] + "/", "longer than"}, // as written, MaxPath+1 bytes
	}
	for _, tt := range tests {
		t.Run(shortName(tt.in), func(t *testing.T) {
			got, err := policy.ParseRule(tt.in)
			checkRuleError(t, "ParseRule", tt.in, got, err, tt.why)
		})
	}
}

// checkRuleError checks that a parser refused in with a *RuleError that
// names the rule as written and says why.
func checkRuleError(t *testing.T, fn, in string, got policy.Rule, err error, why string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s(%q): got %#v, nil, want an error about %q", fn, in, got, why)
	}
	if got != (policy.Rule{}) {
		t.Errorf("%s(%q): got rule %#v with the error, want the zero Rule", fn, in, got)
	}
	var re *policy.RuleError
	if !errors.As(err, &re) {
		t.Fatalf("%s(%q): got error %T %v, want *policy.RuleError", fn, in, err, err)
	}
	if re.Rule != in {
		t.Errorf("RuleError.Rule: got %q, want %q", re.Rule, in)
	}
	if !strings.Contains(re.Why, why) {
		t.Errorf("%s(%q): RuleError.Why: got %q, want it to mention %q", fn, in, re.Why, why)
	}
}

func TestRuleErrorMessage(t *testing.T) {
	_, err := policy.ParseRule("x:/a")
	if err == nil {
		t.Fatal(`ParseRule("x:/a"): got nil error, want one`)
	}
	if got, want := err.Error(), `rule "x:/a": `; !strings.HasPrefix(got, want) {
		t.Errorf("Error(): got %q, want prefix %q", got, want)
	}
	_, err = policy.ParseLine("rw:/a mode=0600", nil)
	if got, want := fmt.Sprint(err), `rule "rw:/a mode=0600": `; !strings.HasPrefix(got, want) {
		t.Errorf("Error(): got %q, want prefix %q", got, want)
	}
}

func TestRuleStringRoundTrip(t *testing.T) {
	no := policy.NoOwner
	rules := []policy.Rule{
		rule("/", true, rd),
		rule("/etc/hostname", false, rd),
		rule("/srv/www", true, rd),
		rule("/\x80", false, rd),
		rule("/a b", true, rd|wr),
		rule("/a\"b#c", false, rd|ap),
		rule("/\x01\x7f\xff", true, cr),
		rule("/a\\b", false, wr),
		withOpts(rule("/up", true, rd|wr|cr), 0o640, 1000, 1000),
		withOpts(rule("/up", true, ap|cr), 0o600, no, no),
		withOpts(rule("/up x", false, rd|ap|cr), 0o666, 0, no),
		withOpts(rule("/", true, wr|cr), 0o4, 0, 0),
		withDirs(rule("/", true, rd)),
		withDirs(rule("/a b", false, rd|wr)),
		withDirs(withOpts(rule("/up", true, rd|wr|cr), 0o640, 1000, 1000)),
	}
	// Every mode set ParseRule accepts, on an exact and a tree rule.
	for _, m := range allModeSets() {
		if m.valid {
			rules = append(rules, rule("/m", false, m.modes), rule("/m", true, m.modes))
		}
	}
	for _, r := range rules {
		checkRoundTrip(t, r)
	}
}

// modeSet is one of the 16 subsets of {r, w, a, c}, written as letters.
type modeSet struct {
	letters string
	modes   policy.Mode
	valid   bool // ParseRule accepts it: not empty, not both w and a
}

// allModeSets lists the 16 subsets of r, w, a, c, built from the letters
// (not from the Mode values).
func allModeSets() []modeSet {
	var sets []modeSet
	for i := range 16 {
		var s modeSet
		for j, l := range []struct {
			c byte
			m policy.Mode
		}{{'r', rd}, {'w', wr}, {'a', ap}, {'c', cr}} {
			if i&(1<<j) != 0 {
				s.letters += string(l.c)
				s.modes |= l.m
			}
		}
		s.valid = s.letters != "" && !(strings.Contains(s.letters, "w") && strings.Contains(s.letters, "a"))
		sets = append(sets, s)
	}
	return sets
}

func TestModeString(t *testing.T) {
	tests := []struct {
		m    policy.Mode
		want string
	}{
		{0, ""},
		{policy.Read, "r"},
		{policy.Write, "w"},
		{policy.Append, "a"},
		{policy.Create, "c"},
		{policy.Create | policy.Read, "rc"},
		{policy.Read | policy.Write | policy.Append | policy.Create, "rwac"},
		{policy.Mode(0x10), "?0x10"},
		{policy.Read | policy.Mode(0x80), "r?0x80"},
	}
	for _, tt := range tests {
		if got := tt.m.String(); got != tt.want {
			t.Errorf("Mode(%d).String(): got %q, want %q", uint8(tt.m), got, tt.want)
		}
	}
	// The letters parse back to the same modes.
	for _, s := range allModeSets() {
		if !s.valid {
			continue
		}
		if got := s.modes.String(); len(got) != len(s.letters) {
			t.Errorf("Mode(%d).String(): got %q, want the letters %q", uint8(s.modes), got, s.letters)
		}
		r, err := policy.ParseRule(s.modes.String() + ":/x")
		if err != nil || r.Modes != s.modes {
			t.Errorf("ParseRule(%q): got %v, %v, want modes %q", s.modes.String()+":/x", r.Modes, err, s.letters)
		}
	}
}

// shortName keeps subtest names readable for very long inputs.
func shortName(s string) string {
	if len(s) > 40 {
		return s[:20] + "..." + s[len(s)-10:]
	}
	if s == "" {
		return "empty"
	}
	return s
}

// TestOwnProcessRulesRefused: a rule that reaches into the opener's own
// process (r:/proc/self/ gave a parent the root opener's memory) is refused
// when it is parsed, with the reason; /proc's shared files stay allowed.
func TestOwnProcessRulesRefused(t *testing.T) {
	for _, in := range []string{
		"r:/proc/self/", "r:/proc/self", "r:/proc/self/mem", "rw:/proc/self/fd/",
		"r:/proc/thread-self/", "r:/proc/thread-self/status",
		"r:/proc/1/", "r:/proc/12345/environ", "r:/proc/1/task/1/mem",
		"r:/proc/", "rw:/dev/fd/", "r:/dev/fd/3", "r:/dev/stdin", "w:/dev/stdout", "w:/dev/stderr",
	} {
		_, err := policy.ParseRule(in)
		var re *policy.RuleError
		if !errors.As(err, &re) || !strings.Contains(re.Why, "own") {
			t.Errorf("ParseRule(%q): got %v, want a *RuleError saying it reaches the opener's own process", in, err)
		}
		if _, err := policy.ParseLine(in, nil); err == nil {
			t.Errorf("ParseLine(%q): got nil error", in)
		}
	}
	for _, in := range []string{"r:/proc/cpuinfo", "r:/proc/sys/", "r:/proc/sys/kernel/hostname", "r:/proc/selfish", "r:/proc/1x/", "r:/dev/null", "r:/dev/", "r:/dev/fdx", "r:/srv/proc/self/"} {
		if _, err := policy.ParseRule(in); err != nil {
			t.Errorf("ParseRule(%q): %v, want it allowed", in, err)
		}
	}
}
