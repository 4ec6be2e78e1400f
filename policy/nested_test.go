package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/policy"
)

// The attack these tests stand for: with rwc:/app/ and r:/app/key, whoever
// can write in /app/ makes a symlink /app/link -> key, or renames key (or a
// directory holding it) to another name under /app/, and asks for that
// name. The most specific rule for /app/link is the tree, so the open
// succeeds with write access to the key. No check on the path can see it,
// so New refuses the policy. child/nested_test.go performs the attack on
// disk.

func TestNestedNarrowerRuleRefused(t *testing.T) {
	for _, tc := range []struct {
		rules []string
		inner string // the rule the error names first
		tree  string
		more  string // "which grants more (...)"
	}{
		{[]string{"rwc:/app/", "r:/app/key"}, "r:/app/key", "rwc:/app/", "w, c"},
		// Order does not matter.
		{[]string{"r:/app/key", "rwc:/app/"}, "r:/app/key", "rwc:/app/", "w, c"},
		// Any depth, exact rules and tree rules alike.
		{[]string{"rw:/app/", "r:/app/a/b/key"}, "r:/app/a/b/key", "rw:/app/", "w"},
		{[]string{"rw:/app/", "r:/app/secret/"}, "r:/app/secret/", "rw:/app/", "w"},
		{[]string{"r:/", "w:/etc/shadow"}, "w:/etc/shadow", "r:/", "r"},
		// An exact rule at the tree's own path lies in it too.
		{[]string{"rw:/app/", "r:/app"}, "r:/app", "rw:/app/", "w"},
		// a is not w: an append-only rule inside a write tree.
		{[]string{"rw:/var/log/", "ra:/var/log/audit"}, "ra:/var/log/audit", "rw:/var/log/", "w"},
		// The nearest broader tree is named.
		{[]string{"r:/", "rw:/a/", "r:/a/b"}, "r:/a/b", "rw:/a/", "w"},
		// Options that widen: a looser mode for created files, another
		// owner, multiply-linked files.
		{[]string{"rwc:/up/", "rwc:/up/tight/ mode=0600"}, "rwc:/up/tight/ mode=0600", "rwc:/up/", "mode=0666"},
		{[]string{"rwc:/up/ owner=1000", "rwc:/up/x owner=2000"}, "rwc:/up/x owner=2000", "rwc:/up/ owner=1000", "owner=1000"},
		{[]string{"rwc:/up/ owner=0:50", "rwc:/up/x owner=0"}, "rwc:/up/x owner=0", "rwc:/up/ owner=0:50", "owner=0:50"},
		{[]string{"r:/srv/ hardlinks=yes", "r:/srv/key"}, "r:/srv/key", "r:/srv/ hardlinks=yes", "hardlinks=yes"},
		{[]string{"rw:/srv/ hardlinks=yes", "r:/srv/key"}, "r:/srv/key", "rw:/srv/ hardlinks=yes", "w, hardlinks=yes"},
	} {
		_, err := policy.ParseLines(tc.rules)
		var ne *policy.NestingError
		if !errors.As(err, &ne) {
			t.Errorf("ParseLines(%q): got %v, want a *NestingError", tc.rules, err)
			continue
		}
		if ne.Inner.String() != tc.inner || ne.Tree.String() != tc.tree || strings.Join(ne.More, ", ") != tc.more {
			t.Errorf("ParseLines(%q): got inner %s, tree %s, more %q; want %s, %s, %q", tc.rules, ne.Inner, ne.Tree, ne.More, tc.inner, tc.tree, tc.more)
		}
		want := `rule "` + tc.inner + `" lies inside tree rule "` + tc.tree + `", which grants more (` + tc.more + `) through any link or rename into it: ` +
			"a narrower rule inside a broader tree cannot be enforced by path; split the tree or narrow it"
		if err.Error() != want {
			t.Errorf("Error():\n got %s\nwant %s", err, want)
		}
	}
}

func TestNestedRulesThatGrantAsMuchAreFine(t *testing.T) {
	for _, rules := range [][]string{
		{"r:/app/", "r:/app/key"},
		{"r:/app/", "rw:/app/data/"},
		{"r:/app/", "rwc:/app/data/ mode=0600 owner=5"},
		{"ra:/log/", "rw:/log/main"}, // w covers a
		{"rwc:/up/ mode=0600", "rwc:/up/x"},
		{"rwc:/up/ mode=0600", "rwc:/up/x mode=0640"},
		{"rwc:/up/", "rwc:/up/x owner=7"},
		{"rwc:/up/ owner=7", "rwc:/up/x owner=7:8"},
		{"r:/srv/", "r:/srv/mirror/ hardlinks=yes"},
		{"r:/srv/ hardlinks=yes", "r:/srv/key hardlinks=yes"},
		// Siblings and look-alike prefixes are not nested.
		{"rw:/app/", "r:/apple"},
		{"rw:/app/", "r:/app2/"},
		{"rw:/a/b/", "r:/a/c"},
		// A tree rule's own path is not inside the exact rule of the same
		// path: exact rules cover nothing beneath them.
		{"rw:/a", "r:/a/"},
		{"rw:/a", "r:/a/b"},
	} {
		if _, err := policy.ParseLines(rules); err != nil {
			t.Errorf("ParseLines(%q): %v, want nil", rules, err)
		}
	}
}

// TestNestedRuleInFile: in a policy file the error is at the inner rule's
// line and names the tree rule's line.
func TestNestedRuleInFile(t *testing.T) {
	rules, err := policy.ParseFile("app.policy", []byte("rwc:/app/\n# the key\nr:/app/key\n"), nil)
	testutil.Must(t, err)
	_, err = policy.New(rules)
	var fe *policy.FileError
	var ne *policy.NestingError
	if !errors.As(err, &fe) || fe.File != "app.policy" || fe.Line != 3 || !errors.As(err, &ne) {
		t.Fatalf("New: got %v, want a *FileError at app.policy:3 around a *NestingError", err)
	}
	want := `app.policy:3: rule "r:/app/key" lies inside tree rule "rwc:/app/" (app.policy:1), which grants more (w, c)`
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Error():\n got %s\nwant %s...", err, want)
	}
	// Command-line rules are named by their flag.
	cmd := []policy.Rule{}
	for _, s := range []string{"rwc:/app/", "r:/app/key"} {
		r, err := policy.ParseRule(s)
		testutil.Must(t, err)
		r.Source = "--allow " + s
		cmd = append(cmd, r)
	}
	_, err = policy.New(cmd)
	want = `rule "r:/app/key" (--allow r:/app/key) lies inside tree rule "rwc:/app/" (--allow rwc:/app/), which grants more (w, c)`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("New(--allow rules):\n got %v\nwant %s...", err, want)
	}
}

// TestNestedRuleInScopedPolicy: the rules a client gets together are
// checked together: a tree for every client and a narrower rule in a
// section, or both in a section.
func TestNestedRuleInScopedPolicy(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"tree for all, rule in a uid section", "rwc:/app/\n[uid 1000]\nr:/app/key\n",
			`srv.policy:3: rule "r:/app/key" lies inside tree rule "rwc:/app/" (srv.policy:1)`},
		{"both in a gid section", "[gid 50]\nrw:/app/\nr:/app/key\n",
			`srv.policy:3: rule "r:/app/key" lies inside tree rule "rw:/app/" (srv.policy:2)`},
		{"tree in a uid section, rule in a gid section", "[uid 1]\nrw:/app/\n[gid 2]\nr:/app/key\n",
			`srv.policy:4: rule "r:/app/key" lies inside tree rule "rw:/app/" (srv.policy:2)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := policy.ParseScopedFile("srv.policy", []byte(tc.data), nil)
			testutil.Must(t, err)
			_, err = s.Compile()
			var ne *policy.NestingError
			if !errors.As(err, &ne) || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("Compile:\n got %v\nwant a *NestingError starting %s", err, tc.want)
			}
		})
	}
	// Sections that no client gets together may nest as they like.
	s, err := policy.ParseScopedFile("ok.policy", []byte("[uid 1]\nrw:/app/\n[uid 2]\nr:/app/key\n"), nil)
	testutil.Must(t, err)
	if _, err := s.Compile(); err != nil {
		t.Errorf("Compile of separate uid sections: %v", err)
	}
}
