package policy_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/privsep-go/privsep/policy"
)

// paths returns the paths of rules as written (with "/" for trees), for
// comparing rule lists.
func paths(rules []policy.Rule) []string {
	var s []string
	for _, r := range rules {
		s = append(s, r.String())
	}
	return s
}

const scopedFile = `# server.policy
r:/etc/hostname          # everyone
[uid alice]
r:/home/alice/
[gid staff]              # primary gid 50
r:/srv/staff/
[ uid 1001 ]             # bob, by number, spaces inside the brackets
r:/home/bob/
[all]
r:/usr/share/doc/
[uid alice]              # a section may come back; its rules add up
r:/srv/alice.txt
[gid 77]                 # an empty section
`

func TestParseScopedFile(t *testing.T) {
	s, err := policy.ParseScopedFile("server.policy", []byte(scopedFile), newFakeResolver())
	if err != nil {
		t.Fatalf("ParseScopedFile: %v", err)
	}
	gotSections := []string{}
	for _, sc := range s.Sections() {
		gotSections = append(gotSections, sc.String())
	}
	if want := []string{"all", "uid 1000", "uid 1001", "gid 50", "gid 77"}; !slices.Equal(gotSections, want) {
		t.Errorf("Sections: got %q, want %q", gotSections, want)
	}
	for _, tc := range []struct {
		uid, gid uint32
		want     []string
	}{
		{0, 0, []string{"r:/etc/hostname", "r:/usr/share/doc/"}},
		{1000, 1000, []string{"r:/etc/hostname", "r:/usr/share/doc/", "r:/home/alice/", "r:/srv/alice.txt"}},
		{1000, 50, []string{"r:/etc/hostname", "r:/usr/share/doc/", "r:/home/alice/", "r:/srv/alice.txt", "r:/srv/staff/"}},
		{1001, 50, []string{"r:/etc/hostname", "r:/usr/share/doc/", "r:/home/bob/", "r:/srv/staff/"}},
		{4242, 50, []string{"r:/etc/hostname", "r:/usr/share/doc/", "r:/srv/staff/"}},
		{4242, 77, []string{"r:/etc/hostname", "r:/usr/share/doc/"}},
	} {
		if got := paths(s.Rules(tc.uid, tc.gid)); !slices.Equal(got, tc.want) {
			t.Errorf("Rules(%d, %d): got %q, want %q", tc.uid, tc.gid, got, tc.want)
		}
	}
	// Sources name the file and line, as ParseFile's do.
	if r := s.Rules(1000, 0); r[2].Source != "server.policy:4" {
		t.Errorf("Source of r:/home/alice/: got %q, want server.policy:4", r[2].Source)
	}

	p, err := s.Compile()
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	for _, tc := range []struct {
		uid, gid uint32
		allowed  []string
		denied   []string
		sections []string
	}{
		{0, 0, []string{"/etc/hostname", "/usr/share/doc/x"}, []string{"/home/alice/a", "/home/bob/b", "/srv/staff/s"}, []string{"all"}},
		{1000, 1000, []string{"/home/alice/a", "/srv/alice.txt"}, []string{"/home/bob/b", "/srv/staff/s"}, []string{"all", "uid 1000"}},
		{1000, 50, []string{"/home/alice/a", "/srv/staff/s"}, []string{"/home/bob/b"}, []string{"all", "uid 1000", "gid 50"}},
		{1001, 1001, []string{"/home/bob/b", "/etc/hostname"}, []string{"/home/alice/a", "/srv/staff/s"}, []string{"all", "uid 1001"}},
		{9, 50, []string{"/srv/staff/s"}, []string{"/home/alice/a"}, []string{"all", "gid 50"}},
		{9, 77, []string{"/etc/hostname"}, []string{"/srv/staff/s"}, []string{"all", "gid 77"}},
	} {
		pol := p.For(tc.uid, tc.gid)
		for _, a := range tc.allowed {
			if _, err := pol.Check(a, 0, 0); err != nil {
				t.Errorf("For(%d, %d).Check(%s): got %v, want allowed", tc.uid, tc.gid, a, err)
			}
		}
		for _, d := range tc.denied {
			if _, err := pol.Check(d, 0, 0); err == nil {
				t.Errorf("For(%d, %d).Check(%s): got allowed, want denied", tc.uid, tc.gid, d)
			}
		}
		if got := p.Sections(tc.uid, tc.gid); !slices.Equal(got, tc.sections) {
			t.Errorf("Sections(%d, %d): got %q, want %q", tc.uid, tc.gid, got, tc.sections)
		}
	}
	// Clients of the same kind share one compiled policy; an empty section
	// shares the policy for everyone.
	if p.For(1000, 1000) != p.For(1000, 12345) {
		t.Error("For(1000, 1000) and For(1000, 12345): got different policies, want the same")
	}
	if p.For(9, 77) != p.For(0, 0) {
		t.Error("For(9, 77) (an empty gid section) and For(0, 0): got different policies, want the same")
	}
	// all; uid 1000; uid 1001; gid 50; uid 1000 + gid 50; uid 1001 + gid 50.
	if n := len(p.Policies()); n != 6 {
		t.Errorf("Policies: got %d distinct policies, want 6", n)
	}
}

func TestParseScopedFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		line       int
		why        string
	}{
		{"unknown section", "r:/a\n[main]\n", 2, "unknown section"},
		{"empty section", "[ ]\n", 1, "empty"},
		{"no closing bracket", "[uid 0\n", 1, "closing"},
		{"text after the bracket", "[uid 0] r:/a\n", 1, "closing"},
		{"two ids", "[uid 0 1]\n", 1, "exactly one"},
		{"no id", "[gid]\n", 1, "exactly one"},
		{"unknown user", "[uid ghost]\n", 1, "ghost"},
		{"unknown group", "\n[gid nogroup]\n", 2, "nogroup"},
		{"id -1", "[uid 4294967295]\n", 1, "not a valid id"},
		{"id too large", "[gid 99999999999]\n", 1, "out of range"},
		{"negative id", "[uid -1]\n", 1, "-1"},
		{"bad rule in a section", "[uid 0]\nx:/a\n", 2, "unknown mode"},
		{"all takes nothing", "[all 0]\n", 1, "unknown section"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := policy.ParseScopedFile("bad.policy", []byte(tc.data), newFakeResolver())
			var fe *policy.FileError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, %v, want a *FileError", s, err)
			}
			if fe.Line != tc.line || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("got %q (line %d), want line %d mentioning %q", err, fe.Line, tc.line, tc.why)
			}
		})
	}
	// Without a resolver, names cannot be looked up.
	if _, err := policy.ParseScopedFile("p", []byte("[uid alice]\n"), nil); err == nil || !strings.Contains(err.Error(), "numeric") {
		t.Errorf("name without a resolver: got %v, want an error about numeric ids", err)
	}
}

func TestParseFileRefusesSections(t *testing.T) {
	_, err := policy.ParseFile("p", []byte("r:/a\n[uid 0]\nr:/b\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "p:2: sections are only for a server's policy") {
		t.Errorf("ParseFile with a section: got %v, want an error at line 2 pointing to the server", err)
	}
}

func TestScopedCompileConflicts(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       string // in the error
	}{
		{"section repeats all", "r:/a/\n[uid 0]\nr:/a/\n", "bad.policy:3: "},
		{"uid and gid sections name the same path", "[uid 0]\nr:/a\n[gid 0]\nr:/a\n", "uid 0 and primary gid 0"},
		{"twice in one section", "[gid 5]\nr:/a\n[all]\n[gid 5]\nr:/a\n", "bad.policy:5: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := policy.ParseScopedFile("bad.policy", []byte(tc.data), nil)
			if err != nil {
				t.Fatalf("ParseScopedFile: %v", err)
			}
			_, err = s.Compile()
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "duplicates") {
				t.Errorf("Compile: got %v, want a duplicate error with %q", err, tc.want)
			}
		})
	}
	// Paths may repeat in sections no client gets together.
	s, err := policy.ParseScopedFile("ok.policy", []byte("[uid 1]\nr:/a\n[uid 2]\nr:/a\n[gid 3]\nr:/a\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Compile(); err == nil {
		t.Error("uid 1 and gid 3 both name /a: got no error, want one (a client may have both)")
	}
	s, err = policy.ParseScopedFile("ok.policy", []byte("[uid 1]\nr:/a\n[uid 2]\nr:/a\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Compile(); err != nil {
		t.Errorf("two uid sections naming /a: got %v, want nil", err)
	}
}

func TestScopedMergeAndAdd(t *testing.T) {
	a, err := policy.ParseScopedFile("a", []byte("r:/x\n[uid 7]\nr:/y\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := policy.ParseScopedFile("b", []byte("r:/z\n[uid 7]\nr:/w\n[gid 8]\nr:/v\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var s policy.Scoped
	s.Merge(a)
	s.Merge(b)
	r, _ := policy.ParseRule("/cli")
	s.Add(policy.Scope{Kind: policy.ScopeAll}, r)
	if got, want := paths(s.Rules(7, 8)), []string{"r:/x", "r:/z", "r:/cli", "r:/y", "r:/w", "r:/v"}; !slices.Equal(got, want) {
		t.Errorf("Rules(7, 8): got %q, want %q", got, want)
	}
	if _, err := s.Compile(); err != nil {
		t.Errorf("Compile: %v", err)
	}

	// Too many combinations of sections.
	var big policy.Scoped
	for i := range 65 {
		big.Add(policy.Scope{Kind: policy.ScopeUID, ID: uint32(i)})
		big.Add(policy.Scope{Kind: policy.ScopeGID, ID: uint32(i)})
	}
	if _, err := big.Compile(); err == nil || !strings.Contains(err.Error(), "combinations") {
		t.Errorf("65 × 65 sections: got %v, want an error about combinations", err)
	}
}

func TestUnscoped(t *testing.T) {
	pol, err := policy.Parse([]string{"/etc/hostname"})
	if err != nil {
		t.Fatal(err)
	}
	p := policy.Unscoped(pol)
	if p.For(0, 0) != pol || p.For(1000, 1000) != pol || len(p.Policies()) != 1 {
		t.Error("Unscoped: want the one policy for every client")
	}
	if got := p.Sections(5, 5); !slices.Equal(got, []string{"all"}) {
		t.Errorf("Sections: got %q, want [all]", got)
	}
}
