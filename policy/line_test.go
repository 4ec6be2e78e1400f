package policy_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/privsep-go/privsep/policy"
)

// fakeResolver resolves the names of a made-up system, so that tests do not
// depend on /etc/passwd. A name it does not know is an error.
type fakeResolver struct {
	users, groups map[string]int64
	calls         []string
}

func newFakeResolver() *fakeResolver {
	return &fakeResolver{
		users:  map[string]int64{"alice": 1000, "bob": 1001, "root": 0, "12ab": 77},
		groups: map[string]int64{"staff": 50, "alice": 1000, "wheel": 10},
	}
}

func (f *fakeResolver) LookupUser(name string) (int64, error) {
	f.calls = append(f.calls, "user:"+name)
	if id, ok := f.users[name]; ok {
		return id, nil
	}
	return 0, fmt.Errorf("unknown user %q", name)
}

func (f *fakeResolver) LookupGroup(name string) (int64, error) {
	f.calls = append(f.calls, "group:"+name)
	if id, ok := f.groups[name]; ok {
		return id, nil
	}
	return 0, fmt.Errorf("unknown group %q", name)
}

func TestParseLineValid(t *testing.T) {
	no := policy.NoOwner
	long := "/" + strings.Repeat("a", policy.MaxPath-1)
	tests := []struct {
		in   string
		want policy.Rule
		str  string // want String(); "" means the same as in
	}{
		{"r:/etc/hostname", rule("/etc/hostname", false, rd), ""},
		{"/etc/hostname", rule("/etc/hostname", false, rd), "r:/etc/hostname"},
		{"/srv/www/", rule("/srv/www", true, rd), "r:/srv/www/"},
		{"r:/", rule("/", true, rd), ""},
		{"w:/a", rule("/a", false, wr), ""},
		{"a:/var/log/app.log", rule("/var/log/app.log", false, ap), ""},
		{"c:/a/", rule("/a", true, cr), ""},
		{"wr:/a", rule("/a", false, rd|wr), "rw:/a"},
		{"rac:/a/", rule("/a", true, rd|ap|cr), ""},
		{"/a:b", rule("/a:b", false, rd), "r:/a:b"},
		{"r:/a:b/", rule("/a:b", true, rd), ""},
		{"r:" + long, rule(long, false, rd), ""},
		// Quoted paths: spaces, quotes, '#', escapes, bytes that are not
		// UTF-8.
		{`"/srv/my files/"`, rule("/srv/my files", true, rd), `r:"/srv/my files/"`},
		{`r:"/srv/my files/"`, rule("/srv/my files", true, rd), ""},
		{`rw:"/a \"quoted\" name"`, rule(`/a "quoted" name`, false, rd|wr), ""},
		{`r:"/a #not a comment/"`, rule("/a #not a comment", true, rd), ""},
		{`r:"/tab\there"`, rule("/tab\there", false, rd), ""},
		{`r:"/nl\n"`, rule("/nl\n", false, rd), ""},
		{`r:"/\xff\xfe/"`, rule("/\xff\xfe", true, rd), ""},
		{`r:"/caf\u00e9"`, rule("/café", false, rd), `r:"/café"`},
		{`r:"/plain"`, rule("/plain", false, rd), "r:/plain"},
		{`r:"/back\\slash"`, rule(`/back\slash`, false, rd), `r:/back\slash`},
		// Options.
		{"rwc:/srv/up/ mode=0640", withOpts(rule("/srv/up", true, rd|wr|cr), 0o640, no, no), ""},
		{"rwc:/srv/up/ mode=0640 owner=1000:1001", withOpts(rule("/srv/up", true, rd|wr|cr), 0o640, 1000, 1001), ""},
		{"rwc:/srv/up/ owner=1000:1001 mode=0640", withOpts(rule("/srv/up", true, rd|wr|cr), 0o640, 1000, 1001), "rwc:/srv/up/ mode=0640 owner=1000:1001"},
		{"rwc:/srv/up/ owner=1000", withOpts(rule("/srv/up", true, rd|wr|cr), 0, 1000, no), ""},
		{"rwc:/srv/up/ owner=0:0", withOpts(rule("/srv/up", true, rd|wr|cr), 0, 0, 0), ""},
		{"c:/x mode=0600", withOpts(rule("/x", false, cr), 0o600, no, no), ""},
		{"ac:/log/ mode=0600", withOpts(rule("/log", true, ap|cr), 0o600, no, no), ""},
		{"rwc:/a mode=0666", withOpts(rule("/a", false, rd|wr|cr), 0o666, no, no), ""},
		{"rwc:/a mode=0400", withOpts(rule("/a", false, rd|wr|cr), 0o400, no, no), ""},
		{"rwc:/a mode=04", withOpts(rule("/a", false, rd|wr|cr), 0o4, no, no), "rwc:/a mode=0004"},
		{"rwc:/a mode=00600", withOpts(rule("/a", false, rd|wr|cr), 0o600, no, no), "rwc:/a mode=0600"},
		{"rwc:/a owner=2147483647:2147483647", withOpts(rule("/a", false, rd|wr|cr), 0, 2147483647, 2147483647), ""},
		{"rwc:/a owner=4294967294:4000000000", withOpts(rule("/a", false, rd|wr|cr), 0, 4294967294, 4000000000), ""}, // above 2^31: int64 on 32-bit hosts too
		{"rwc:/a owner=007", withOpts(rule("/a", false, rd|wr|cr), 0, 7, no), "rwc:/a owner=7"},
		// White space between the parts may be spaces or tabs, several.
		{"rwc:/a\tmode=0600", withOpts(rule("/a", false, rd|wr|cr), 0o600, no, no), "rwc:/a mode=0600"},
		{"rwc:/a   mode=0600 \t owner=5  ", withOpts(rule("/a", false, rd|wr|cr), 0o600, 5, no), "rwc:/a mode=0600 owner=5"},
		{`rwc:"/my dir/" mode=0600 owner=1:2`, withOpts(rule("/my dir", true, rd|wr|cr), 0o600, 1, 2), ""},
		{"r:/a ", rule("/a", false, rd), "r:/a"},
		// hardlinks=yes lets the rule open multiply-linked files; no is
		// the default, which String leaves out.
		{"r:/srv/mirror/ hardlinks=yes", withLinks(rule("/srv/mirror", true, rd)), ""},
		{"r:/srv/mirror/ hardlinks=no", rule("/srv/mirror", true, rd), "r:/srv/mirror/"},
		{"rwc:/a hardlinks=yes mode=0600", withLinks(withOpts(rule("/a", false, rd|wr|cr), 0o600, no, no)), "rwc:/a mode=0600 hardlinks=yes"},
		{`r:"/my dir/" hardlinks=yes`, withLinks(rule("/my dir", true, rd)), ""},
		// dirs=yes hands out directory descriptors; dirs=no is the default.
		{"r:/srv/www/ dirs=yes", withDirs(rule("/srv/www", true, rd)), ""},
		{"r:/srv/www/ dirs=no", rule("/srv/www", true, rd), "r:/srv/www/"},
		{"r:/srv/www dirs=yes", withDirs(rule("/srv/www", false, rd)), ""},
		{"rwc:/up/ dirs=yes mode=0600 owner=1", withDirs(withOpts(rule("/up", true, rd|wr|cr), 0o600, 1, no)), "rwc:/up/ mode=0600 owner=1 dirs=yes"},
	}
	for _, tt := range tests {
		t.Run(shortName(tt.in), func(t *testing.T) {
			got, err := policy.ParseLine(tt.in, nil)
			if err != nil {
				t.Fatalf("ParseLine(%q): got error %v, want %#v", tt.in, err, tt.want)
			}
			if got != tt.want {
				t.Fatalf("ParseLine(%q): got %#v, want %#v", tt.in, got, tt.want)
			}
			str := tt.str
			if str == "" {
				str = tt.in
			}
			if s := got.String(); s != str {
				t.Errorf("String(): got %q, want %q", s, str)
			}
			checkRoundTrip(t, got)
			// A resolver changes nothing when every id is a number.
			res := newFakeResolver()
			if again, err := policy.ParseLine(tt.in, res); err != nil || again != got {
				t.Errorf("ParseLine(%q, resolver): got %#v, %v, want %#v as without one", tt.in, again, err, got)
			}
			if len(res.calls) != 0 {
				t.Errorf("ParseLine(%q, resolver): looked up %q, want no look-up for numeric ids", tt.in, res.calls)
			}
		})
	}
}

// checkRoundTrip checks that r survives String and ParseLine, and compiles.
func checkRoundTrip(t testing.TB, r policy.Rule) {
	t.Helper()
	again, err := policy.ParseLine(r.String(), nil)
	if err != nil || again != r {
		t.Errorf("ParseLine(%q) (String of %#v): got %#v, %v, want the same rule", r.String(), r, again, err)
	}
	if _, err := policy.New([]policy.Rule{r}); err != nil {
		t.Errorf("New(%#v): got %v, want nil", r, err)
	}
}

func TestParseLineNames(t *testing.T) {
	no := policy.NoOwner
	tests := []struct {
		in    string
		want  policy.Rule
		calls []string
	}{
		{"rwc:/a/ owner=alice", withOpts(rule("/a", true, rd|wr|cr), 0, 1000, no), []string{"user:alice"}},
		{"rwc:/a/ owner=alice:staff", withOpts(rule("/a", true, rd|wr|cr), 0, 1000, 50), []string{"user:alice", "group:staff"}},
		// The user part is looked up as a user, the group part as a group,
		// even when both are the same name.
		{"rwc:/a/ owner=alice:alice", withOpts(rule("/a", true, rd|wr|cr), 0, 1000, 1000), []string{"user:alice", "group:alice"}},
		{"rwc:/a/ owner=root:wheel mode=0640", withOpts(rule("/a", true, rd|wr|cr), 0o640, 0, 10), []string{"user:root", "group:wheel"}},
		{"rwc:/a/ owner=1000:staff", withOpts(rule("/a", true, rd|wr|cr), 0, 1000, 50), []string{"group:staff"}},
		{"rwc:/a/ owner=bob:7", withOpts(rule("/a", true, rd|wr|cr), 0, 1001, 7), []string{"user:bob"}},
		// A name that starts with digits is a name.
		{"ac:/a/ owner=12ab", withOpts(rule("/a", true, ap|cr), 0, 77, no), []string{"user:12ab"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			res := newFakeResolver()
			got, err := policy.ParseLine(tt.in, res)
			if err != nil || got != tt.want {
				t.Fatalf("ParseLine(%q, resolver): got %#v, %v, want %#v, nil", tt.in, got, err, tt.want)
			}
			if strings.Join(res.calls, ",") != strings.Join(tt.calls, ",") {
				t.Errorf("look-ups: got %q, want %q", res.calls, tt.calls)
			}
			// String writes the ids, so the rule re-parses without a
			// resolver: the form the opener receives.
			if strings.Contains(got.String(), "alice") || strings.Contains(got.String(), "staff") {
				t.Errorf("String(): got %q, want numeric ids only", got.String())
			}
			checkRoundTrip(t, got)
			// Without a resolver, names are refused.
			r, err := policy.ParseLine(tt.in, nil)
			checkRuleError(t, "ParseLine", tt.in, r, err, "not a numeric id")
		})
	}
}

func TestParseLineRefused(t *testing.T) {
	tooLong := "/" + strings.Repeat("a", policy.MaxPath)
	tests := []struct {
		in  string
		why string
	}{
		{"", "absolute"},
		{"etc/hostname", "absolute"},
		{"r:etc/hostname", "absolute"},
		{"r /a", "absolute"},
		{" /a", "absolute"},
		{"r:", "empty path"},
		{`r:""`, "empty path"},
		{":/x", "empty mode"},
		{"x:/a", "unknown mode"},
		{"rr:/a", "twice"},
		{"wa:/a", "contradict"},
		{"aw:/a/", "contradict"},
		{"rwac:/a/ mode=0600", "contradict"},
		{"/a/../b", "not clean"},
		{"r://", "not clean"},
		{`r:"/a/../b"`, "not clean"},
		{`r:"//"`, "not clean"},
		{"r:" + tooLong, "longer than"},
		// Quoting.
		{`r:"/a`, "quoted"},
		{`r:"/a\"`, "quoted"},
		{`r:"/a\q"`, "quoted"},
		{`r:"/a"x`, "space after"},
		{`r:"/a"mode=0600`, "space after"},
		{`r:"relative"`, "absolute"},
		{`r:"/a\x00"`, "NUL"},
		{`r:"/a\000b"`, "NUL"},
		// A space ends an unquoted path; what follows must be options.
		{"r:/a b", `"b"`},
		{"r:/my files/", "key=value"},
		{"r:/a #comment", "key=value"}, // comments are ParseFile's business
		// Options.
		{"rwc:/a mode", "key=value"},
		{"rwc:/a mode=", "key=value"},
		{"rwc:/a =0600", "unknown option"},
		{"rwc:/a owner=", "key=value"},
		{"rwc:/a foo=1", "unknown option"},
		{"rwc:/a Mode=0600", "unknown option"},
		{"rwc:/a mode=0600 mode=0600", "twice"},
		{"rwc:/a mode=0600 mode=0640", "twice"},
		{"rwc:/a owner=1 owner=1", "twice"},
		{"r:/a hardlinks=yes hardlinks=yes", "twice"},
		{"r:/a hardlinks=true", "want yes or no"},
		{"r:/a hardlinks=Yes", "want yes or no"},
		{"r:/a hardlinks", "key=value"},
		{"r:/a hardlinks=", "key=value"},
		{"r:/a/ dirs=yes dirs=yes", "twice"},
		{"r:/a/ dirs=true", "want yes or no"},
		{"r:/a/ dirs=", "key=value"},
		{"r:/a/ dirs", "key=value"},
		// A directory opens for reading only.
		{"wc:/a/ dirs=yes", "no r mode"},
		{"a:/a dirs=yes", "no r mode"},
		{"rwc:/a owner=1 mode=0600 owner=2", "twice"},
		// mode= and owner= are about created files: they need c.
		{"rw:/a mode=0600", "no c mode"},
		{"r:/a/ mode=0600", "no c mode"},
		{"ra:/a mode=0600", "no c mode"},
		{"rw:/a owner=1000", "no c mode"},
		{"a:/a owner=0:0", "no c mode"},
		{"r:/a mode=0600 owner=1", "no c mode"},
		// Only permission bits within 0666.
		{"rwc:/a mode=0755", "within 0666"},
		{"rwc:/a mode=0700", "within 0666"},
		{"rwc:/a mode=0667", "within 0666"},
		{"rwc:/a mode=0777", "within 0666"},
		{"rwc:/a mode=04644", "within 0666"},
		{"rwc:/a mode=02644", "within 0666"},
		{"rwc:/a mode=01644", "within 0666"},
		{"rwc:/a mode=07666", "within 0666"},
		{"rwc:/a mode=010000", "within 0666"},
		{"rwc:/a mode=00", "nobody can open"},
		{"rwc:/a mode=0000", "nobody can open"},
		// Not octal, or without the leading 0.
		{"rwc:/a mode=0", "octal"},
		{"rwc:/a mode=640", "octal"},
		{"rwc:/a mode=0648", "octal"},
		{"rwc:/a mode=0x1a4", "octal"},
		{"rwc:/a mode=0o640", "octal"},
		{"rwc:/a mode=-0640", "octal"},
		{"rwc:/a mode=+0640", "octal"},
		{"rwc:/a mode=0_640", "octal"},
		{"rwc:/a mode=rw-r-----", "octal"},
		{"rwc:/a mode=0640x", "octal"},
		{"rwc:/a mode=0777777777777", "octal"},
		// Owners.
		{"rwc:/a owner=alice", "not a numeric id"}, // no resolver
		{"rwc:/a owner=1000:staff", "not a numeric id"},
		{"rwc:/a owner=-1", "not a numeric id"},
		{"rwc:/a owner=1000:-1", "not a numeric id"},
		{"rwc:/a owner=4294967295", "out of range"},
		{"rwc:/a owner=:100", "empty name"},
		{"rwc:/a owner=1000:", "empty name"},
		{"rwc:/a owner=:", "empty name"},
	}
	for _, tt := range tests {
		t.Run(shortName(tt.in), func(t *testing.T) {
			got, err := policy.ParseLine(tt.in, nil)
			checkRuleError(t, "ParseLine", tt.in, got, err, tt.why)
		})
	}
}

func TestParseLineResolverErrors(t *testing.T) {
	for _, tt := range []struct{ in, why string }{
		{"rwc:/a owner=ghost", `unknown user "ghost"`},
		{"rwc:/a owner=alice:ghosts", `unknown group "ghosts"`},
		{"rwc:/a owner=ghost:staff", `unknown user "ghost"`},
		{"rw:/a owner=alice", "no c mode"},
	} {
		got, err := policy.ParseLine(tt.in, newFakeResolver())
		checkRuleError(t, "ParseLine", tt.in, got, err, tt.why)
	}
}

// rangeResolver answers every name with a fixed id, which may be one no
// rule can hold.
type rangeResolver struct{ id int64 }

func (r rangeResolver) LookupUser(string) (int64, error)  { return r.id, nil }
func (r rangeResolver) LookupGroup(string) (int64, error) { return r.id, nil }

// TestParseLineResolverIDRange: an id from the resolver goes into the rule
// only if the rule can hold it. NoOwner (-1) would silently drop the
// owner= the line asks for (files would be created owned by the opener);
// an id the language cannot write back (negative, or above 2^32-2, since
// (uid_t)-1 means "no change" to chown) would make a rule that ParseLine
// accepts but New then refuses as "not a well-formed rule", without the
// FILE:LINE that ParseFile would have given. Either way ParseLine must
// refuse the line itself. Ids from 2^31 to 2^32-2 are valid Linux ids.
func TestParseLineResolverIDRange(t *testing.T) {
	for _, id := range []int64{policy.NoOwner, -2, 1<<32 - 1, 1 << 32} {
		for _, line := range []string{"rwc:/a owner=name", "rwc:/a owner=0:name"} {
			r, err := policy.ParseLine(line, rangeResolver{id})
			if err == nil {
				t.Errorf("ParseLine(%q) with the resolver answering %d: got %q (UID %d, GID %d), nil; want a *RuleError", line, id, r, r.UID, r.GID)
			}
		}
	}
	// The ids a rule can hold are accepted.
	for _, id := range []int64{0, 65534, 1<<31 - 1, 1 << 31, 4000000000, 1<<32 - 2} {
		r, err := policy.ParseLine("rwc:/a owner=name:name", rangeResolver{id})
		if err != nil || r.UID != id || r.GID != id {
			t.Errorf("resolver answering %d: got %#v, %v", id, r, err)
		}
	}
}
