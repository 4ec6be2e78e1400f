package policy_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/privsep-go/privsep/policy"
)

func TestParseFile(t *testing.T) {
	no := policy.NoOwner
	data := strings.Join([]string{
		"# app.policy: what the app may open", // 1
		"",                                    // 2
		"r:/etc/hostname",                     // 3
		"   # an indented comment",            // 4
		"\t# a comment after a tab",           // 5
		"r:/srv/www/   # a comment after the rule", // 6
		"r:/srv/a#b", // 7: '#' not after white space is part of the path
		`r:"/srv/my #1/"  # '#' in quotes is kept`,            // 8
		`rwc:"/srv/up \"x\"/" mode=0640 owner=alice:staff #c`, // 9
		"   ",                          // 10
		"\t",                           // 11
		"ra:/var/log/app.log\t#\ttabs", // 12
		"  rwc:/srv/spool/ mode=0600 owner=1000  ", // 13: leading and trailing white space
		"#",                   // 14
		"ac:/var/log/audit/#", // 15: '#' right after the path, kept
		"",                    // 16
	}, "\n")
	rules, err := policy.ParseFile("app.policy", []byte(data), newFakeResolver())
	if err != nil {
		t.Fatalf("ParseFile: got error %v, want nil", err)
	}
	src := func(r policy.Rule, line int) policy.Rule {
		r.Source = fmt.Sprintf("app.policy:%d", line)
		return r
	}
	want := []policy.Rule{
		src(rule("/etc/hostname", false, rd), 3),
		src(rule("/srv/www", true, rd), 6),
		src(rule("/srv/a#b", false, rd), 7),
		src(rule("/srv/my #1", true, rd), 8),
		src(withOpts(rule(`/srv/up "x"`, true, rd|wr|cr), 0o640, 1000, 50), 9),
		src(rule("/var/log/app.log", false, rd|ap), 12),
		src(withOpts(rule("/srv/spool", true, rd|wr|cr), 0o600, 1000, no), 13),
		src(rule("/var/log/audit/#", false, ap|cr), 15),
	}
	if len(rules) != len(want) {
		t.Fatalf("ParseFile: got %d rules %v, want %d", len(rules), rules, len(want))
	}
	for i := range want {
		if rules[i] != want[i] {
			t.Errorf("rule %d: got %#v, want %#v", i, rules[i], want[i])
		}
		// Source is not part of the rule's meaning.
		r := rules[i]
		r.Source = ""
		checkRoundTrip(t, r)
	}
	// The rules compile, and a decision names its source.
	p, err := policy.New(rules)
	if err != nil {
		t.Fatalf("New: got %v, want nil", err)
	}
	d, err := p.Check("/srv/www/index.html", 0, 0)
	if err != nil || p.Rules()[d.Rule].Source != "app.policy:6" {
		t.Errorf("Check: got %+v, %v, want allowed by app.policy:6", d, err)
	}
}

func TestParseFileLineEndings(t *testing.T) {
	for _, tt := range []struct {
		name, data string
		lines      []int // the Source line of each rule
	}{
		{"empty", "", nil},
		{"only newlines", "\n\n\n", nil},
		{"only comments", "# a\n#b\n  # c", nil},
		{"no final newline", "r:/a\nr:/b", []int{1, 2}},
		{"final newline", "r:/a\nr:/b\n", []int{1, 2}},
		{"CRLF", "r:/a\r\nr:/b\r\n", []int{1, 2}},
		{"CRLF with comments", "# c\r\n\r\nr:/a # x\r\n  \r\nr:/b\r\n", []int{3, 5}},
		{"CRLF after a quoted path", "r:\"/a b\"\r\n", []int{1}},
		{"mixed", "r:/a\nr:/b\r\n\nr:/c", []int{1, 2, 4}},
		{"blank lines", "\n\n\nr:/a\n\n", []int{4}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rules, err := policy.ParseFile("p", []byte(tt.data), nil)
			if err != nil {
				t.Fatalf("ParseFile(%q): got error %v, want nil", tt.data, err)
			}
			if len(rules) != len(tt.lines) {
				t.Fatalf("ParseFile(%q): got %d rules %v, want %d", tt.data, len(rules), rules, len(tt.lines))
			}
			for i, r := range rules {
				if want := fmt.Sprintf("p:%d", tt.lines[i]); r.Source != want {
					t.Errorf("rule %d: got Source %q, want %q", i, r.Source, want)
				}
				if strings.ContainsAny(r.Path, "\r\n") {
					t.Errorf("rule %d: got Path %q, want no CR or LF", i, r.Path)
				}
			}
		})
	}
}

func TestParseFileErrors(t *testing.T) {
	tests := []struct {
		name, data string
		line       int
		why        string // in the error message
		ruleErr    bool   // the cause is a *RuleError
	}{
		{"bad mode on line 1", "x:/a\n", 1, "unknown mode", true},
		{"after comments and blank lines", "# c\n\nr:/ok\n   \nwa:/a\n", 5, "contradict", true},
		{"CRLF", "r:/ok\r\n\r\nr:relative\r\n", 3, "absolute", true},
		{"relative", "r:/ok\netc/passwd\n", 2, "absolute", true},
		{"not clean", "r:/a/../b", 1, "not clean", true},
		{"unknown option", "r:/ok\nrwc:/a frob=1 # c\n", 2, "unknown option", true},
		{"mode without c", "\n\nrw:/a mode=0600", 3, "no c mode", true},
		{"owner without c", "r:/a/ owner=0\n", 1, "no c mode", true},
		{"mode outside 0666", "rwc:/a mode=0755\n", 1, "0666", true},
		{"unknown user", "rwc:/a owner=ghost\n", 1, "ghost", true},
		{"unquoted space", "r:/my files/\n", 1, "key=value", true},
		{"unterminated quote", "r:\"/a # b\n", 1, "quoted", true},
		{"comment glued to an option", "rwc:/a mode=0600#c\n", 1, "octal", true},
		{"section", "r:/ok\n[main]\nr:/b\n", 2, "sections", false},
		{"indented section", "  [main]  # c\n", 1, "sections", false},
		{"the first bad line wins", "r:/ok\nx:/a\ny:/b\n", 2, "unknown mode", true},
		{"NUL byte", "r:/a\x00b\n", 1, "NUL", true},
		{"long line", "r:/" + strings.Repeat("a", policy.MaxPath) + "\n", 1, "longer than", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules, err := policy.ParseFile("bad.policy", []byte(tt.data), newFakeResolver())
			if err == nil {
				t.Fatalf("ParseFile(%q): got %v, nil, want an error at line %d", tt.data, rules, tt.line)
			}
			if rules != nil {
				t.Errorf("ParseFile(%q): got rules %v with the error, want none", tt.data, rules)
			}
			var fe *policy.FileError
			if !errors.As(err, &fe) {
				t.Fatalf("ParseFile(%q): got %T %v, want *policy.FileError", tt.data, err, err)
			}
			if fe.File != "bad.policy" || fe.Line != tt.line {
				t.Errorf("FileError: got %s:%d, want bad.policy:%d", fe.File, fe.Line, tt.line)
			}
			if want := fmt.Sprintf("bad.policy:%d: ", tt.line); !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Error(): got %q, want prefix %q", err.Error(), want)
			}
			if !strings.Contains(err.Error(), tt.why) {
				t.Errorf("Error(): got %q, want it to mention %q", err.Error(), tt.why)
			}
			var re *policy.RuleError
			if errors.As(err, &re) != tt.ruleErr {
				t.Errorf("errors.As(%v, *RuleError): got %v, want %v", err, !tt.ruleErr, tt.ruleErr)
			}
		})
	}
}

func TestFileErrorMessage(t *testing.T) {
	inner := errors.New("boom")
	for _, tt := range []struct {
		e    policy.FileError
		want string
	}{
		{policy.FileError{File: "a.policy", Line: 3, Err: inner}, "a.policy:3: boom"},
		{policy.FileError{File: "a.policy", Err: inner}, "a.policy: boom"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error(): got %q, want %q", got, tt.want)
		}
		if !errors.Is(&tt.e, inner) {
			t.Errorf("errors.Is(%v, inner): got false, want true", &tt.e)
		}
	}
}

// TestDuplicateInFile: a rule that repeats an earlier one is reported at
// its own line, naming the line it repeats.
func TestDuplicateInFile(t *testing.T) {
	rules, err := policy.ParseFile("d.policy", []byte("r:/a\n# c\nr:/b/\nrw:/a\n"), nil)
	if err != nil {
		t.Fatalf("ParseFile: %v", err)
	}
	_, err = policy.New(rules)
	var fe *policy.FileError
	if !errors.As(err, &fe) || fe.File != "d.policy" || fe.Line != 4 {
		t.Fatalf("New: got %v, want a *FileError at d.policy:4", err)
	}
	if !strings.Contains(err.Error(), "d.policy:1") || !strings.Contains(err.Error(), "duplicates") {
		t.Errorf("Error(): got %q, want it to name the duplicated d.policy:1", err.Error())
	}
	var re *policy.RuleError
	if !errors.As(err, &re) {
		t.Errorf("errors.As(%v, *RuleError): got false, want true", err)
	}
}

// TestParseFileOfStrings: the rules of a policy, written one per line with
// String, are a policy file that parses back to the same rules.
func TestParseFileOfStrings(t *testing.T) {
	res := newFakeResolver()
	in := []string{
		"r:/etc/hostname",
		`r:"/srv/a #b/"`,
		"rwc:/srv/up/ mode=0640 owner=alice:staff",
		"ra:/var/log/x\xff",
		`ac:"/a\"b" mode=0600`,
		"r:/line\nbreak",
	}
	var rules []policy.Rule
	for _, s := range in {
		// "r:/line\nbreak" has a newline in an unquoted path: fine for
		// ParseLine, and String quotes it for the file.
		r, err := policy.ParseLine(s, res)
		if err != nil {
			t.Fatalf("parsing %q: %v", s, err)
		}
		rules = append(rules, r)
	}
	p, err := policy.New(rules)
	if err != nil {
		t.Fatal(err)
	}
	file := strings.Join(p.Strings(), "\n") + "\n"
	got, err := policy.ParseFile("s", []byte(file), nil)
	if err != nil {
		t.Fatalf("ParseFile(%q): %v", file, err)
	}
	if len(got) != len(rules) {
		t.Fatalf("ParseFile(%q): got %d rules, want %d", file, len(got), len(rules))
	}
	for i := range rules {
		g := got[i]
		if g.Source != fmt.Sprintf("s:%d", i+1) {
			t.Errorf("rule %d: Source %q, want s:%d", i, g.Source, i+1)
		}
		g.Source = ""
		if g != rules[i] {
			t.Errorf("rule %d: got %#v, want %#v", i, g, rules[i])
		}
	}
}
