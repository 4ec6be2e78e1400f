package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/privsep-go/privsep/policy"
)

func TestParseRuleValid(t *testing.T) {
	long := "/" + strings.Repeat("a", policy.MaxPath-1) // exactly MaxPath bytes
	tests := []struct {
		in   string
		want policy.Rule
		str  string // want String()
	}{
		{"/etc/hostname", policy.Rule{Path: "/etc/hostname", Modes: policy.Read}, "r:/etc/hostname"},
		{"r:/etc/hostname", policy.Rule{Path: "/etc/hostname", Modes: policy.Read}, "r:/etc/hostname"},
		{"/srv/www/", policy.Rule{Path: "/srv/www", Tree: true, Modes: policy.Read}, "r:/srv/www/"},
		{"r:/srv/www/", policy.Rule{Path: "/srv/www", Tree: true, Modes: policy.Read}, "r:/srv/www/"},
		{"/", policy.Rule{Path: "/", Tree: true, Modes: policy.Read}, "r:/"},
		{"r:/", policy.Rule{Path: "/", Tree: true, Modes: policy.Read}, "r:/"},
		{"/x", policy.Rule{Path: "/x", Modes: policy.Read}, "r:/x"},
		{"/x/", policy.Rule{Path: "/x", Tree: true, Modes: policy.Read}, "r:/x/"},
		// A colon after the first slash belongs to the path.
		{"/a:b", policy.Rule{Path: "/a:b", Modes: policy.Read}, "r:/a:b"},
		{"r:/a:b/", policy.Rule{Path: "/a:b", Tree: true, Modes: policy.Read}, "r:/a:b/"},
		// Names that only look like dot components.
		{"/...", policy.Rule{Path: "/...", Modes: policy.Read}, "r:/..."},
		{"/a/..b/", policy.Rule{Path: "/a/..b", Tree: true, Modes: policy.Read}, "r:/a/..b/"},
		{"/a/b..", policy.Rule{Path: "/a/b..", Modes: policy.Read}, "r:/a/b.."},
		{"/.hidden", policy.Rule{Path: "/.hidden", Modes: policy.Read}, "r:/.hidden"},
		// Bytes that are not UTF-8, spaces and newlines are legal in names.
		{"/data/\xff\xfe/", policy.Rule{Path: "/data/\xff\xfe", Tree: true, Modes: policy.Read}, "r:/data/\xff\xfe/"},
		{"/a b/c\n", policy.Rule{Path: "/a b/c\n", Modes: policy.Read}, "r:/a b/c\n"},
		// The limit counts the path, not the mode prefix.
		{long, policy.Rule{Path: long, Modes: policy.Read}, "r:" + long},
		{"r:" + long, policy.Rule{Path: long, Modes: policy.Read}, "r:" + long},
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
			again, err := policy.ParseRule(got.String())
			if err != nil || again != got {
				t.Errorf("ParseRule(String()) = %#v, %v: got a different rule, want %#v, nil", again, err, got)
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
		{" :/a", "unknown mode"},
		{"r,r:/a", "unknown mode"},
		{"w:/a", "not supported"},
		{"a:/a", "not supported"},
		{"c:/a", "not supported"},
		{"rw:/a", "not supported"},
		{"wr:/a/", "not supported"},
		{"rr:/a", "twice"},
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
		// "//" is "/" written unclean, just as "/a/b//" is "/a/b/"; a rule
		// built as "/$DIR/" with an empty DIR must not grant the whole
		// filesystem.
		{"//", "not clean"},
		{"r://", "not clean"},
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
			if err == nil {
				t.Fatalf("ParseRule(%q): got %#v, nil, want an error about %q", tt.in, got, tt.why)
			}
			if got != (policy.Rule{}) {
				t.Errorf("ParseRule(%q): got rule %#v with the error, want the zero Rule", tt.in, got)
			}
			var re *policy.RuleError
			if !errors.As(err, &re) {
				t.Fatalf("ParseRule(%q): got error %T %v, want *policy.RuleError", tt.in, err, err)
			}
			if re.Rule != tt.in {
				t.Errorf("RuleError.Rule: got %q, want %q", re.Rule, tt.in)
			}
			if !strings.Contains(re.Why, tt.why) {
				t.Errorf("RuleError.Why: got %q, want it to mention %q", re.Why, tt.why)
			}
		})
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
}

func TestRuleStringRoundTrip(t *testing.T) {
	for _, r := range []policy.Rule{
		{Path: "/", Tree: true, Modes: policy.Read},
		{Path: "/etc/hostname", Modes: policy.Read},
		{Path: "/srv/www", Tree: true, Modes: policy.Read},
		{Path: "/\x80", Modes: policy.Read},
	} {
		got, err := policy.ParseRule(r.String())
		if err != nil || got != r {
			t.Errorf("ParseRule(%q): got %#v, %v, want %#v, nil", r.String(), got, err, r)
		}
	}
}

func TestModeString(t *testing.T) {
	tests := []struct {
		m    policy.Mode
		want string
	}{
		{0, ""},
		{policy.Read, "r"},
		{policy.Mode(2), "?0x2"},
		{policy.Read | policy.Mode(0x80), "r?0x80"},
	}
	for _, tt := range tests {
		if got := tt.m.String(); got != tt.want {
			t.Errorf("Mode(%d).String(): got %q, want %q", uint8(tt.m), got, tt.want)
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
