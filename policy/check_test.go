//go:build linux

package policy_test

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/policy"
)

// The shared test policy: exact and tree rules, nested trees, an exact rule
// inside a tree, an exact and a tree rule on the same path, non-UTF-8 names.
var checkRules = []string{
	"/etc/hostname",
	"/etc/ssl/",
	"/etc/ssl/private/key.pem",
	"/srv/www/",
	"/srv/www/private/",
	"/x",
	"/data/\xff\xfe/",
	"/opt/both",
	"/opt/both/",
}

type checkCase struct {
	path  string
	flags int
	// For an allowed request: the deciding rule (as String() writes it),
	// the directory and the relative path.
	rule, dir, rel string
	// For a refusal.
	kind  policy.Kind
	errno syscall.Errno
}

// allowed lists requests that rule (as String() writes it) allows, each
// given by the relative path Check must return beneath dir; the request is
// dir joined with it.
func allowed(rule, dir string, rels ...string) []checkCase {
	tests := make([]checkCase, len(rels))
	for i, rel := range rels {
		tests[i] = checkCase{path: joinRel(dir, rel), rule: rule, dir: dir, rel: rel}
	}
	return tests
}

func denied(paths ...string) []checkCase {
	return refused(policy.Denied, syscall.EACCES, paths)
}

func badRequest(errno syscall.Errno, paths ...string) []checkCase {
	return refused(policy.BadRequest, errno, paths)
}

func refused(kind policy.Kind, errno syscall.Errno, paths []string) []checkCase {
	tests := make([]checkCase, len(paths))
	for i, p := range paths {
		tests[i] = checkCase{path: p, kind: kind, errno: errno}
	}
	return tests
}

func TestCheck(t *testing.T) {
	deepRel := strings.Repeat("d/", 100) + "f"
	atMaxRel := strings.Repeat("a", policy.MaxPath-len("/srv/www/"))
	overMax := "/srv/www/" + atMaxRel + "a"
	tests := slices.Concat(
		// Exact rules allow exactly their file.
		allowed("r:/etc/hostname", "/etc", "hostname"),
		denied("/etc/hostname/x", "/etc", "/etc/hostnamex", "/etc/hostnam", "/etc/hosts"),
		allowed("r:/x", "/", "x"),
		denied("/x/y", "/xy"),
		// Tree rules: the directory itself, children, deep paths.
		allowed("r:/etc/ssl/", "/etc/ssl", ".", "certs/ca.pem"),
		allowed("r:/srv/www/", "/srv/www", ".", "index.html", "a/b/c/d/e/f/g", deepRel, atMaxRel),
		// Names made of dots that are not "." or "..".
		allowed("r:/srv/www/", "/srv/www", "...", "..a/b..", ".hidden"),
		// No prefix confusion: matching is by whole components.
		denied("/srv/wwwx/a", "/srv/wwwx", "/srv/ww", "/srv/ww/a", "/srv", "/", "/etc/ssl2/a"),
		// Most specific wins: an exact rule beats the tree around it, and
		// the deeper tree beats the shallower.
		allowed("r:/etc/ssl/private/key.pem", "/etc/ssl/private", "key.pem"),
		allowed("r:/etc/ssl/", "/etc/ssl", "private/other", "private/key.pem/x"),
		allowed("r:/srv/www/private/", "/srv/www/private", ".", "x/y"),
		allowed("r:/srv/www/", "/srv/www", "privatex"),
		allowed("r:/opt/both", "/opt", "both"),
		allowed("r:/opt/both/", "/opt/both", "x"),
		denied("/opt"),
		// Bytes that are not UTF-8 are just bytes.
		allowed(`r:"/data/\xff\xfe/"`, "/data/\xff\xfe", ".", "\x80file"),
		denied("/data/\xff", "/data/\xff\xfe\xfd"),
		// Bad requests are refused, never cleaned.
		badRequest(syscall.EINVAL, "", "etc/hostname", "./etc/hostname", "srv/www/a"),
		badRequest(syscall.EINVAL, "/srv/www/../../etc/shadow", "/srv/www/a/../b", "/srv/www/..", "/srv/www/.", "/srv/www/./a"),
		badRequest(syscall.EINVAL, "/srv/www/", "/etc/hostname/", "//srv/www/a", "/srv//www/a", "//", "/..", "/."),
		badRequest(syscall.EINVAL, "/srv/www/a\x00", "/etc/hostname\x00.txt", "\x00"),
		badRequest(syscall.ENAMETOOLONG, overMax, "/"+strings.Repeat("x", 1<<16)),
	)
	p := mustParse(t, checkRules...)
	runCheckCases(t, p, tests)
}

func TestCheckRootTree(t *testing.T) {
	p := mustParse(t, "/", "/home/user/", "/etc/passwd")
	tests := slices.Concat(
		allowed("r:/", "/", ".", "a", "a/b/c", "home", "home/userx"),
		allowed("r:/home/user/", "/home/user", ".", ".ssh/id_ed25519"),
		allowed("r:/etc/passwd", "/etc", "passwd"),
		allowed("r:/", "/", "etc/passwd/x", "\xff"),
		badRequest(syscall.EINVAL, "/../etc/shadow", "relative"),
	)
	runCheckCases(t, p, tests)
}

func TestCheckEmptyPolicy(t *testing.T) {
	p := mustParse(t)
	if got := p.Dirs(); len(got) != 0 {
		t.Errorf("Dirs(): got %q, want none", got)
	}
	runCheckCases(t, p, slices.Concat(denied("/", "/etc/hostname"), badRequest(syscall.EINVAL, "x")))
}

func runCheckCases(t *testing.T, p *policy.Policy, tests []checkCase) {
	t.Helper()
	rules, dirs := p.Rules(), p.Dirs()
	for _, tt := range tests {
		t.Run(shortName(tt.path), func(t *testing.T) {
			d, err := p.Check(tt.path, tt.flags, 0)
			if tt.kind == 0 {
				if err != nil {
					t.Fatalf("Check(%q, %#x): got error %v, want allowed by %s", tt.path, tt.flags, err, tt.rule)
				}
				if d.Rule < 0 || d.Rule >= len(rules) || d.Dir < 0 || d.Dir >= len(dirs) {
					t.Fatalf("Check(%q): got Rule %d Dir %d, want indexes into %d rules and %d dirs", tt.path, d.Rule, d.Dir, len(rules), len(dirs))
				}
				if got := rules[d.Rule].String(); got != tt.rule {
					t.Errorf("Check(%q) rule: got %s, want %s", tt.path, got, tt.rule)
				}
				if got := dirs[d.Dir]; got != tt.dir {
					t.Errorf("Check(%q) dir: got %q, want %q", tt.path, got, tt.dir)
				}
				if d.Rel != tt.rel {
					t.Errorf("Check(%q) rel: got %q, want %q", tt.path, d.Rel, tt.rel)
				}
				if want := tt.flags | forcedFlags; d.Flags != want {
					t.Errorf("Check(%q, %#x) flags: got %#x, want %#x", tt.path, tt.flags, d.Flags, want)
				}
				if got := joinRel(dirs[d.Dir], d.Rel); got != tt.path {
					t.Errorf("Check(%q): dir and rel join to %q, want the request path", tt.path, got)
				}
				if want := !rules[d.Rule].Tree; d.Exact != want {
					t.Errorf("Check(%q).Exact: got %v, want %v for rule %s", tt.path, d.Exact, want, rules[d.Rule])
				}
				m, ok := p.Match(tt.path)
				if want := (policy.Decision{Rule: d.Rule, Dir: d.Dir, Rel: d.Rel, Exact: d.Exact}); !ok || m != want {
					t.Errorf("Match(%q): got %+v, %v, want %+v, true as Check decided", tt.path, m, ok, want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check(%q, %#x): got allowed %+v, want refusal kind %d errno %v", tt.path, tt.flags, d, tt.kind, tt.errno)
			}
			if d.Rule != -1 {
				t.Errorf("Check(%q, %#x) refused: got Rule %d, want -1 (no rule consulted)", tt.path, tt.flags, d.Rule)
			}
			r := refusal(t, err)
			if r.Kind != tt.kind || r.Errno != tt.errno {
				t.Errorf("Check(%q, %#x): got kind %d errno %v (%v), want kind %d errno %v", tt.path, tt.flags, r.Kind, r.Errno, err, tt.kind, tt.errno)
			}
			if tt.kind == policy.Denied {
				if m, ok := p.Match(tt.path); ok {
					t.Errorf("Match(%q): got %+v, true, want no match", tt.path, m)
				}
				if !strings.HasPrefix(err.Error(), "denied by policy: ") {
					t.Errorf("Error(): got %q, want prefix %q", err.Error(), "denied by policy: ")
				}
			} else if !strings.HasPrefix(err.Error(), "bad request: ") {
				t.Errorf("Error(): got %q, want prefix %q", err.Error(), "bad request: ")
			}
		})
	}
}

// TestCheckPrecedence: a bad path is reported before bad flags, and both
// before a denial, so a malformed request is always a bad request.
func TestCheckPrecedence(t *testing.T) {
	p := mustParse(t, "/srv/www/")
	tests := []struct {
		path  string
		flags int
		kind  policy.Kind
		errno syscall.Errno
	}{
		{"/srv/www/a", unix.O_RDONLY, 0, 0},
		{"/srv/www/a", unix.O_WRONLY, policy.Denied, syscall.EACCES},
		{"/srv/www/a", unix.O_CREAT, policy.Denied, syscall.EACCES},
		{"/srv/www/a", unix.O_TRUNC, policy.BadRequest, syscall.EINVAL},
		{"/etc/shadow", unix.O_TRUNC, policy.BadRequest, syscall.EINVAL},
		{"/etc/shadow", unix.O_ACCMODE, policy.BadRequest, syscall.EINVAL},
		{"/srv/www/../a", unix.O_PATH, policy.BadRequest, syscall.EINVAL},
		{"/srv/www/a", unix.O_NOATIME, policy.BadRequest, syscall.EINVAL},
		{"/etc/shadow", unix.O_PATH, policy.BadRequest, syscall.EINVAL},
		{"/etc/shadow", unix.O_RDWR, policy.Denied, syscall.EACCES},
		{"/srv/www/../a", unix.O_RDONLY, policy.BadRequest, syscall.EINVAL},
		{"/srv/www/../a", unix.O_WRONLY, policy.BadRequest, syscall.EINVAL},
		{"/srv/www/" + strings.Repeat("a", policy.MaxPath), unix.O_PATH, policy.BadRequest, syscall.ENAMETOOLONG},
	}
	for _, tt := range tests {
		d, err := p.Check(tt.path, tt.flags, 0)
		// Only a denial by the matching rule names it.
		wantRule := -1
		if tt.kind == policy.Denied && strings.HasPrefix(tt.path, "/srv/www/") {
			wantRule = 0
		}
		if err != nil && d.Rule != wantRule {
			t.Errorf("Check(%q, %s) refused: got Rule %d, want %d", shortName(tt.path), policy.FlagString(tt.flags), d.Rule, wantRule)
		}
		if tt.kind == 0 {
			if err != nil {
				t.Errorf("Check(%q, %s): got %v, want nil", shortName(tt.path), policy.FlagString(tt.flags), err)
			}
			continue
		}
		if err == nil {
			t.Errorf("Check(%q, %s): got nil, want kind %d errno %v", shortName(tt.path), policy.FlagString(tt.flags), tt.kind, tt.errno)
			continue
		}
		r := refusal(t, err)
		if r.Kind != tt.kind || r.Errno != tt.errno {
			t.Errorf("Check(%q, %s): got kind %d errno %v, want kind %d errno %v", shortName(tt.path), policy.FlagString(tt.flags), r.Kind, r.Errno, tt.kind, tt.errno)
		}
	}
}

func TestCheckPath(t *testing.T) {
	atMax := "/" + strings.Repeat("a", policy.MaxPath-1)
	good := []string{"/", "/a", "/a/b", "/...", "/a/.b", "/\xff", atMax}
	for _, s := range good {
		if err := policy.CheckPath(s); err != nil {
			t.Errorf("CheckPath(%q): got %v, want nil", shortName(s), err)
		}
	}
	bad := slices.Concat(
		badRequest(syscall.EINVAL, "", "a", ".", "/a/", "/a/.", "/a/..", "/../a", "//a", "/a//b", "/a\x00"),
		badRequest(syscall.ENAMETOOLONG, atMax+"a"),
	)
	for _, tt := range bad {
		err := policy.CheckPath(tt.path)
		if err == nil {
			t.Errorf("CheckPath(%q): got nil, want errno %v", shortName(tt.path), tt.errno)
			continue
		}
		r := refusal(t, err)
		if r.Kind != policy.BadRequest || r.Errno != tt.errno {
			t.Errorf("CheckPath(%q): got kind %d errno %v, want kind %d errno %v", shortName(tt.path), r.Kind, r.Errno, policy.BadRequest, tt.errno)
		}
	}
}

// TestCheckAgainstReference compares Check with refMatch over every prefix
// and sibling of the rules' paths.
func TestCheckAgainstReference(t *testing.T) {
	p := mustParse(t, checkRules...)
	rules, dirs := p.Rules(), p.Dirs()
	var paths []string
	for _, r := range rules {
		for _, q := range []string{r.Path, r.Path + "x", r.Path + "/y", r.Path + "/y/z", path.Dir(r.Path), r.Path[:len(r.Path)-1]} {
			if policy.CheckPath(q) == nil {
				paths = append(paths, q)
			}
		}
	}
	for _, q := range paths {
		want, wantOK := refMatch(rules, q)
		d, err := p.Check(q, 0, 0)
		if (err == nil) != wantOK {
			t.Errorf("Check(%q): got error %v, want allowed=%v", q, err, wantOK)
			continue
		}
		if err != nil {
			continue
		}
		if d.Rule != want {
			t.Errorf("Check(%q): got rule %s, want %s", q, rules[d.Rule], rules[want])
		}
		if got := joinRel(dirs[d.Dir], d.Rel); got != q {
			t.Errorf("Check(%q): dir %q and rel %q join to %q, want the request path", q, dirs[d.Dir], d.Rel, got)
		}
	}
}

func TestCheckConcurrent(t *testing.T) {
	p := mustParse(t, checkRules...)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				q := fmt.Sprintf("/srv/www/g%d/%d", g, i)
				d, err := p.Check(q, 0, 0)
				if err != nil || d.Rel != q[len("/srv/www/"):] {
					t.Errorf("Check(%q): got %+v, %v, want allowed", q, d, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// bigRules lists n rules, half exact files and half trees three levels
// deep, the way a large deployment might list them. With modes, the exact
// files are append-only and the trees let files be created with a mode and
// owner.
func bigRules(n int, modes bool) []string {
	rules := make([]string, 0, n)
	for i := range n {
		switch {
		case i%2 == 0 && modes:
			rules = append(rules, fmt.Sprintf("ra:/etc/app%04d/conf%04d.ini", i, i))
		case i%2 == 0:
			rules = append(rules, fmt.Sprintf("/etc/app%04d/conf%04d.ini", i, i))
		case modes:
			rules = append(rules, fmt.Sprintf("rwc:/data/d%04d/a/b/ mode=0640 owner=%d:%d", i, 1000+i, 2000+i))
		default:
			rules = append(rules, fmt.Sprintf("/data/d%04d/a/b/", i))
		}
	}
	return rules
}

// bigPolicy is the policy of bigRules without modes.
func bigPolicy(tb testing.TB, n int) *policy.Policy {
	tb.Helper()
	return mustParse(tb, bigRules(n, false)...)
}

// bigModesPolicy is the policy of bigRules with modes and options.
func bigModesPolicy(tb testing.TB, n int) *policy.Policy {
	tb.Helper()
	return mustParseLines(tb, bigRules(n, true)...)
}

var (
	sinkDecision policy.Decision
	sinkErr      error
)

func TestCheckDoesNotAllocate(t *testing.T) {
	type allocCase struct {
		name, path string
		flags      int
		ok         bool
	}
	run := func(t *testing.T, p *policy.Policy, tests []allocCase) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := p.Check(tt.path, tt.flags, 0o4755)
				if (err == nil) != tt.ok {
					t.Fatalf("Check(%q, %s): got error %v, want allowed=%v", shortName(tt.path), policy.FlagString(tt.flags), err, tt.ok)
				}
				allocs := testing.AllocsPerRun(100, func() {
					sinkDecision, sinkErr = p.Check(tt.path, tt.flags, 0o4755)
				})
				if allocs != 0 {
					t.Errorf("Check(%q, %s): got %v allocations per call, want 0", shortName(tt.path), policy.FlagString(tt.flags), allocs)
				}
			})
		}
	}
	t.Run("read", func(t *testing.T) {
		run(t, bigPolicy(t, 1000), []allocCase{
			{"allowed/deep tree", "/data/d0501/a/b/c/d/e/f/g.txt", 0, true},
			{"allowed/tree itself", "/data/d0501/a/b", unix.O_DIRECTORY, true},
			{"allowed/exact", "/etc/app0500/conf0500.ini", unix.O_NONBLOCK, true},
			{"denied/no rule", "/data/d0501/a/x/y", 0, false},
			{"denied/nothing near", "/nowhere/at/all", 0, false},
			{"denied/write", "/etc/app0500/conf0500.ini", unix.O_WRONLY, false},
			{"bad/flags", "/etc/app0500/conf0500.ini", unix.O_PATH, false},
			{"bad/empty", "", 0, false},
			{"bad/relative", "etc/hostname", 0, false},
			{"bad/NUL", "/etc/app0500/conf0500.ini\x00", 0, false},
			{"bad/too long", "/" + strings.Repeat("a", policy.MaxPath), 0, false},
			{"bad/trailing slash", "/data/d0501/a/b/", 0, false},
			{"bad/dot dot", "/data/d0501/a/b/../../../../etc/shadow", 0, false},
			{"bad/double slash", "//data/d0501/a/b/c", 0, false},
			{"bad/dot", "/data/d0501/a/b/./c", 0, false},
		})
	})
	t.Run("modes", func(t *testing.T) {
		run(t, bigModesPolicy(t, 1000), []allocCase{
			{"allowed/create", "/data/d0501/a/b/new", unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL, true},
			{"allowed/tmpfile", "/data/d0501/a/b", unix.O_RDWR | unix.O_TMPFILE, true},
			{"allowed/truncate", "/data/d0501/a/b/f", unix.O_RDWR | unix.O_TRUNC, true},
			{"allowed/append", "/etc/app0500/conf0500.ini", unix.O_WRONLY | unix.O_APPEND, true},
			{"allowed/read", "/etc/app0500/conf0500.ini", unix.O_RDONLY, true},
			{"denied/append-only write", "/etc/app0500/conf0500.ini", unix.O_WRONLY, false},
			{"denied/append-only truncate", "/etc/app0500/conf0500.ini", unix.O_WRONLY | unix.O_APPEND | unix.O_TRUNC, false},
			{"denied/create without c", "/etc/app0500/conf0500.ini", unix.O_WRONLY | unix.O_APPEND | unix.O_CREAT, false},
			{"denied/tmpfile on exact", "/etc/app0500/conf0500.ini", unix.O_RDWR | unix.O_APPEND | unix.O_TMPFILE, false},
			{"denied/no rule", "/data/d0501/a/x/new", unix.O_WRONLY | unix.O_CREAT, false},
			{"bad/read-only truncate", "/data/d0501/a/b/f", unix.O_RDONLY | unix.O_TRUNC, false},
			{"bad/access mode 3", "/data/d0501/a/b/f", unix.O_ACCMODE, false},
			{"bad/excl without creat", "/data/d0501/a/b/f", unix.O_WRONLY | unix.O_EXCL, false},
			{"bad/tmpfile read-only", "/data/d0501/a/b", unix.O_TMPFILE, false},
		})
	})
}

// TestCheckDirs: Decision.Dirs carries the deciding rule's dirs=yes, so
// that the opener hands out a directory's descriptor under it only; nested
// rules decide for themselves (an inner rule may grant more than its tree,
// never less: see TestNesting*).
func TestCheckDirs(t *testing.T) {
	p, err := policy.ParseLines([]string{"r:/srv/", "r:/srv/public/ dirs=yes", "r:/etc dirs=yes", "r:/var/lib"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path string
		want bool
	}{
		{"/srv", false}, {"/srv/a/b", false}, {"/srv/public", true}, {"/srv/public/x", true},
		{"/etc", true}, {"/var/lib", false},
	} {
		d, err := p.Check(tt.path, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatalf("Check(%q): %v", tt.path, err)
		}
		if d.Dirs != tt.want {
			t.Errorf("Check(%q): Dirs %v, want %v", tt.path, d.Dirs, tt.want)
		}
	}
	// O_PATH is never a way to a directory descriptor, dirs=yes or not.
	if _, err := p.Check("/srv/public", unix.O_PATH|unix.O_DIRECTORY, 0); err == nil || refusal(t, err).Kind != policy.BadRequest {
		t.Errorf("Check(/srv/public, O_PATH|O_DIRECTORY): got %v, want a bad request", err)
	}
}
