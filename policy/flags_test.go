//go:build linux

package policy_test

import (
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/policy"
)

// The flag model: an independent statement, written from the issue and
// the kernel's asm-generic/fcntl.h, of what Check and SanitizeFlags decide.
// It does not call the code under test.

// kernelLargefile is the kernel's O_LARGEFILE bit (the arch's uapi
// fcntl.h). Go's unix.O_LARGEFILE is 0 on 64-bit architectures, because
// the kernel implies the flag there.
var kernelLargefile = func() int {
	switch runtime.GOARCH {
	case "arm", "arm64":
		return 0x20000
	case "ppc64", "ppc64le":
		return 0x10000
	case "mips", "mipsle", "mips64", "mips64le":
		return 0x2000
	}
	return 0x8000
}()

const (
	// forcedFlags are added to every allowed request.
	forcedFlags = unix.O_CLOEXEC | unix.O_NOCTTY
	// tmpfileBit is O_TMPFILE without the O_DIRECTORY it includes.
	tmpfileBit = unix.O_TMPFILE &^ unix.O_DIRECTORY
)

// knownFlags is every bit the opener accepts in some request; any other bit
// makes a bad request.
var knownFlags = unix.O_WRONLY | unix.O_RDWR | unix.O_CREAT | unix.O_EXCL | unix.O_NOCTTY |
	unix.O_TRUNC | unix.O_APPEND | unix.O_NONBLOCK | unix.O_DSYNC | kernelLargefile |
	unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_SYNC | tmpfileBit

// verdict is what the model says of one request: allowed (kind 0), denied
// or a bad request, with the errno.
type verdict struct {
	kind  policy.Kind
	errno syscall.Errno
}

var (
	allowV = verdict{}
	denyV  = verdict{policy.Denied, syscall.EACCES}
	badV   = verdict{policy.BadRequest, syscall.EINVAL}
)

func (v verdict) String() string {
	switch v.kind {
	case 0:
		return "allowed"
	case policy.Denied:
		return "denied (" + v.errno.Error() + ")"
	case policy.BadRequest:
		return "bad request (" + v.errno.Error() + ")"
	}
	return fmt.Sprintf("kind %d errno %v", v.kind, v.errno)
}

// flagsBad is the model of the flags on their own: whether they make a bad
// request whatever the rule.
func flagsBad(flags int) bool {
	acc := flags & 3
	creat := flags&unix.O_CREAT != 0
	tmp := flags&tmpfileBit != 0
	write := acc == 1 || acc == 2
	switch {
	case acc == 3: // O_WRONLY|O_RDWR is no access mode
		return true
	case flags < 0 || int64(flags) > 0xffffffff || flags&^knownFlags != 0:
		return true
	case flags&unix.O_TRUNC != 0 && !write: // O_RDONLY|O_TRUNC
		return true
	case tmp && (flags&unix.O_DIRECTORY == 0 || !write || creat):
		return true
	case flags&unix.O_EXCL != 0 && !creat && !tmp:
		return true
	}
	return false
}

// model decides flags against a rule with modes, exact or a tree.
func model(flags int, modes policy.Mode, exact bool) verdict {
	if flagsBad(flags) {
		return badV
	}
	acc := flags & 3
	read := acc == 0 || acc == 2
	write := acc == 1 || acc == 2
	appendFlag := flags&unix.O_APPEND != 0
	trunc := flags&unix.O_TRUNC != 0
	tmp := flags&tmpfileBit != 0
	create := flags&unix.O_CREAT != 0 || tmp
	r, w, a, c := modes&policy.Read != 0, modes&policy.Write != 0, modes&policy.Append != 0, modes&policy.Create != 0
	switch {
	case read && !r:
		return denyV
	case write && !w && !a: // no write access at all
		return denyV
	case write && !w && (!appendFlag || trunc): // append only
		return denyV
	case create && !c:
		return denyV
	case tmp && exact: // an exact rule names a file, not a directory
		return denyV
	}
	return allowV
}

// creating reports whether the flags create a file (allowed requests only).
func creating(flags int) bool {
	return flags&(unix.O_CREAT|tmpfileBit) != 0
}

// hasBoth reports whether modes hold both w and a (which no rule may).
func hasBoth(letters string) bool {
	return strings.Contains(letters, "w") && strings.Contains(letters, "a")
}

// flagExtras are combined with every bit and access mode in the matrix, so
// that O_EXCL, O_TRUNC, O_TMPFILE and friends meet the combinations that
// make them valid.
var flagExtras = []struct {
	name  string
	flags int
}{
	{"", 0},
	{"|O_CREAT", unix.O_CREAT},
	{"|O_CREAT|O_EXCL", unix.O_CREAT | unix.O_EXCL},
	{"|O_TRUNC", unix.O_TRUNC},
	{"|O_APPEND", unix.O_APPEND},
	{"|O_APPEND|O_CREAT", unix.O_APPEND | unix.O_CREAT},
	{"|O_TMPFILE", unix.O_TMPFILE},
	{"|O_TMPFILE|O_EXCL", unix.O_TMPFILE | unix.O_EXCL},
}

// TestFlagRuleMatrix is the flag table the issue asks for: every flag bit
// with every access mode, for every mode set a rule may have, on a tree
// rule and on an exact rule, each decision checked against the model.
func TestFlagRuleMatrix(t *testing.T) {
	const reqMode = 0o7777
	accModes := []struct {
		name  string
		flags int
	}{{"O_RDONLY", unix.O_RDONLY}, {"O_WRONLY", unix.O_WRONLY}, {"O_RDWR", unix.O_RDWR}}
	allowedSomewhere := make([]bool, 32)
	failures := 0
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
		if failures++; failures >= 40 {
			t.Fatalf("too many failures")
		}
	}
	checked := 0
	for _, ms := range allModeSets() {
		tree := ms.letters + ":/srv/t/"
		exact := ms.letters + ":/srv/e"
		if !ms.valid {
			// The empty set and every set with both w and a are refused,
			// by ParseRule and ParseLine alike.
			for _, s := range []string{tree, exact, tree + " mode=0640"} {
				if r, err := policy.ParseRule(s); err == nil {
					t.Errorf("ParseRule(%q): got %v, want an error", s, r)
				}
				if r, err := policy.ParseLine(s, nil); err == nil {
					t.Errorf("ParseLine(%q): got %v, want an error", s, r)
				}
			}
			if ms.letters != "" && !hasBoth(ms.letters) {
				t.Fatalf("mode set %q refused by the test but neither empty nor w with a", ms.letters)
			}
			continue
		}
		treeLine := tree
		treeMode, treeUID, treeGID := uint32(0o666), policy.NoOwner, policy.NoOwner
		if strings.Contains(ms.letters, "c") {
			treeLine += " mode=0640 owner=1000:1001"
			treeMode, treeUID, treeGID = 0o640, 1000, 1001
		}
		p, err := policy.ParseLines([]string{treeLine, exact})
		if err != nil {
			t.Fatalf("ParseLines(%q, %q): %v", treeLine, exact, err)
		}
		if r, err := policy.ParseRule(exact); err != nil || r.Modes != ms.modes {
			t.Fatalf("ParseRule(%q): got %v, %v, want modes %q", exact, r.Modes, err, ms.letters)
		}
		targets := []struct {
			path      string
			exact     bool
			rule      int
			mode      uint32
			uid, gid  int64
			ruleWords string
		}{
			{"/srv/t/d/f", false, 0, treeMode, treeUID, treeGID, treeLine},
			{"/srv/e", true, 1, 0o666, policy.NoOwner, policy.NoOwner, exact},
		}
		for b := range 32 {
			for _, acc := range accModes {
				for _, ex := range flagExtras {
					flags := acc.flags | 1<<b | ex.flags
					name := fmt.Sprintf("%s|bit%d(%s)%s", acc.name, b, policy.FlagString(1<<b), ex.name)
					for _, tg := range targets {
						checked++
						want := model(flags, ms.modes, tg.exact)
						d, err := p.Check(tg.path, flags, reqMode)
						got := allowV
						if err != nil {
							r := refusal(t, err)
							got = verdict{r.Kind, r.Errno}
						}
						if got != want {
							fail("rule %q, Check(%q, %s = %#x): got %v (%v), want %v", tg.ruleWords, tg.path, name, flags, got, err, want)
							continue
						}
						clean, serr := policy.SanitizeFlags(flags)
						switch want.kind {
						case 0:
							allowedSomewhere[b] = true
							if serr != nil {
								fail("SanitizeFlags(%s): got %v, want nil as Check allowed it", name, serr)
							}
							wantFlags := flags | forcedFlags
							if d.Flags != wantFlags || clean != wantFlags {
								fail("rule %q, %s: got Flags %s and SanitizeFlags %s, want %s", tg.ruleWords, name,
									policy.FlagString(d.Flags), policy.FlagString(clean), policy.FlagString(wantFlags))
							}
							if d.Rule != tg.rule || d.Exact != tg.exact {
								fail("rule %q, %s: got Rule %d Exact %v, want %d %v", tg.ruleWords, name, d.Rule, d.Exact, tg.rule, tg.exact)
							}
							wantMode, wantUID, wantGID := uint32(0), policy.NoOwner, policy.NoOwner
							if creating(flags) {
								wantMode, wantUID, wantGID = reqMode&tg.mode, tg.uid, tg.gid
							}
							if d.Mode != wantMode || d.UID != wantUID || d.GID != wantGID {
								fail("rule %q, %s: got Mode %#o UID %d GID %d, want %#o %d %d", tg.ruleWords, name, d.Mode, d.UID, d.GID, wantMode, wantUID, wantGID)
							}
						case policy.Denied:
							// The flags are fine on their own; the rule said no.
							if serr != nil || clean != flags|forcedFlags {
								fail("SanitizeFlags(%s): got %#x, %v, want the flags plus O_CLOEXEC|O_NOCTTY", name, clean, serr)
							}
							if d.Rule != tg.rule {
								fail("rule %q, %s: denied with Rule %d, want %d (the rule that refused)", tg.ruleWords, name, d.Rule, tg.rule)
							}
						case policy.BadRequest:
							if serr == nil {
								fail("SanitizeFlags(%s): got %#x, nil, want a bad request", name, clean)
							} else if r := refusal(t, serr); (verdict{r.Kind, r.Errno}) != badV || clean != 0 {
								fail("SanitizeFlags(%s): got %#x, %v, want 0 and a bad request (EINVAL)", name, clean, serr)
							}
							if d.Rule != -1 {
								fail("rule %q, %s: bad request with Rule %d, want -1 (no rule consulted)", tg.ruleWords, name, d.Rule)
							}
						}
					}
				}
			}
		}
	}
	t.Logf("checked %d decisions", checked)

	// FlagTable says which bits are accepted: exactly those that some rule
	// allows in some combination.
	table := policy.FlagTable()
	if len(table) != 32 {
		t.Fatalf("len(FlagTable()): got %d, want 32", len(table))
	}
	for b, fb := range table {
		if fb.Accepted != allowedSomewhere[b] {
			t.Errorf("FlagTable()[%d] (%s): Accepted %v, but the matrix allowed it somewhere: %v", b, fb.Name, fb.Accepted, allowedSomewhere[b])
		}
		if fb.Accepted != (knownFlags&(1<<b) != 0) {
			t.Errorf("FlagTable()[%d] (%s): Accepted %v, want %v as the model says", b, fb.Name, fb.Accepted, !fb.Accepted)
		}
	}
}

// TestFlagCases are the cases the issue names, each spelled out.
func TestFlagCases(t *testing.T) {
	p, err := policy.ParseLines([]string{
		"rwc:/rwc/",                        // 0
		"rw:/rw/",                          // 1
		"ra:/ra/",                          // 2
		"a:/a/",                            // 3
		"ac:/ac/ owner=7",                  // 4
		"r:/r/",                            // 5
		"rwc:/exact",                       // 6
		"rc:/rc/",                          // 7
		"rwc:/narrow/ mode=0600 owner=1:2", // 8
		"wc:/wc/ mode=0444",                // 9
		"c:/c/",                            // 10
		"w:/w",                             // 11
	})
	if err != nil {
		t.Fatal(err)
	}
	const (
		rdonly = unix.O_RDONLY
		wronly = unix.O_WRONLY
		rdwr   = unix.O_RDWR
		creat  = unix.O_CREAT
		excl   = unix.O_EXCL
		trunc  = unix.O_TRUNC
		app    = unix.O_APPEND
		tmp    = unix.O_TMPFILE
	)
	no := policy.NoOwner
	tests := []struct {
		name     string
		path     string
		flags    int
		mode     uint32
		want     verdict
		rule     int // -1: no rule consulted
		dmode    uint32
		uid, gid int64
	}{
		{"O_RDONLY|O_TRUNC is a bad request", "/rwc/f", rdonly | trunc, 0, badV, -1, 0, no, no},
		{"O_RDONLY|O_TRUNC|O_CREAT is a bad request", "/rwc/f", rdonly | trunc | creat, 0o644, badV, -1, 0, no, no},
		{"access mode 3", "/rwc/f", 3, 0, badV, -1, 0, no, no},
		{"access mode 3|O_APPEND", "/ra/f", 3 | app, 0, badV, -1, 0, no, no},
		{"O_CREAT without c", "/rw/f", wronly | creat, 0o644, denyV, 1, 0, no, no},
		{"O_CREAT|O_EXCL without c", "/rw/f", rdwr | creat | excl, 0o644, denyV, 1, 0, no, no},
		{"O_RDONLY|O_CREAT without c", "/r/f", rdonly | creat, 0o644, denyV, 5, 0, no, no},
		{"O_CREAT under rwc", "/rwc/f", wronly | creat, 0o644, allowV, 0, 0o644, no, no},
		{"O_RDONLY|O_CREAT under rc", "/rc/f", rdonly | creat, 0o644, allowV, 7, 0o644, no, no},
		{"O_WRONLY|O_CREAT under rc", "/rc/f", wronly | creat, 0o644, denyV, 7, 0, no, no},
		{"c alone allows no read", "/c/f", rdonly | creat, 0o644, denyV, 10, 0, no, no},
		{"c alone allows no write", "/c/f", wronly | creat, 0o644, denyV, 10, 0, no, no},
		// Append only.
		{"append-only: O_WRONLY", "/ra/log", wronly, 0, denyV, 2, 0, no, no},
		{"append-only: O_RDWR", "/ra/log", rdwr, 0, denyV, 2, 0, no, no},
		{"append-only: O_WRONLY|O_APPEND", "/ra/log", wronly | app, 0, allowV, 2, 0, no, no},
		{"append-only: O_RDWR|O_APPEND", "/ra/log", rdwr | app, 0, allowV, 2, 0, no, no},
		{"append-only: O_RDONLY", "/ra/log", rdonly, 0, allowV, 2, 0, no, no},
		{"append-only: O_WRONLY|O_APPEND|O_TRUNC", "/ra/log", wronly | app | trunc, 0, denyV, 2, 0, no, no},
		{"append-only: O_WRONLY|O_TRUNC", "/ra/log", wronly | trunc, 0, denyV, 2, 0, no, no},
		{"append-only: O_RDWR|O_APPEND|O_TRUNC", "/ra/log", rdwr | app | trunc, 0, denyV, 2, 0, no, no},
		{"a without r: O_RDWR|O_APPEND", "/a/log", rdwr | app, 0, denyV, 3, 0, no, no},
		{"a without r: O_WRONLY|O_APPEND", "/a/log", wronly | app, 0, allowV, 3, 0, no, no},
		{"a without c: O_CREAT", "/a/log", wronly | app | creat, 0o600, denyV, 3, 0, no, no},
		{"ac: O_WRONLY|O_APPEND|O_CREAT", "/ac/log", wronly | app | creat, 0o640, allowV, 4, 0o640, 7, no},
		{"ac: O_WRONLY|O_CREAT", "/ac/log", wronly | creat, 0o640, denyV, 4, 0, no, no},
		{"w: O_TRUNC", "/rw/f", wronly | trunc, 0, allowV, 1, 0, no, no},
		{"w: O_RDWR|O_TRUNC", "/rw/f", rdwr | trunc, 0, allowV, 1, 0, no, no},
		{"w without r: O_RDWR", "/w", rdwr, 0, denyV, 11, 0, no, no},
		{"w without r: O_WRONLY", "/w", wronly, 0, allowV, 11, 0, no, no},
		{"r: O_WRONLY", "/r/f", wronly, 0, denyV, 5, 0, no, no},
		{"r: O_RDONLY|O_APPEND is harmless", "/r/f", rdonly | app, 0, allowV, 5, 0, no, no},
		// O_TMPFILE needs c, write access and a tree rule.
		{"O_TMPFILE|O_RDWR in a c tree", "/rwc/d", rdwr | tmp, 0o600, allowV, 0, 0o600, no, no},
		{"O_TMPFILE|O_WRONLY in a c tree", "/rwc", wronly | tmp, 0o600, allowV, 0, 0o600, no, no},
		{"O_TMPFILE|O_EXCL", "/rwc/d", rdwr | tmp | excl, 0o600, allowV, 0, 0o600, no, no},
		{"O_TMPFILE without c", "/rw/d", rdwr | tmp, 0o600, denyV, 1, 0, no, no},
		{"O_TMPFILE read-only", "/rwc/d", rdonly | tmp, 0o600, badV, -1, 0, no, no},
		{"O_TMPFILE on an exact rule", "/exact", rdwr | tmp, 0o600, denyV, 6, 0, no, no},
		{"O_TMPFILE with O_CREAT", "/rwc/d", rdwr | tmp | creat, 0o600, badV, -1, 0, no, no},
		{"__O_TMPFILE without O_DIRECTORY", "/rwc/d", rdwr | tmpfileBit, 0o600, badV, -1, 0, no, no},
		{"O_TMPFILE under rc (no write)", "/rc/d", rdwr | tmp, 0o600, denyV, 7, 0, no, no},
		{"O_TMPFILE|O_WRONLY under ac needs O_APPEND", "/ac/d", wronly | tmp, 0o600, denyV, 4, 0, no, no},
		{"O_TMPFILE|O_WRONLY|O_APPEND under ac", "/ac/d", wronly | tmp | app, 0o600, allowV, 4, 0o600, 7, no},
		// O_EXCL only with O_CREAT or O_TMPFILE.
		{"O_EXCL alone", "/rwc/f", rdonly | excl, 0, badV, -1, 0, no, no},
		{"O_WRONLY|O_EXCL", "/rwc/f", wronly | excl, 0, badV, -1, 0, no, no},
		{"O_EXCL on a denied path", "/nowhere", wronly | excl, 0, badV, -1, 0, no, no},
		{"O_CREAT|O_EXCL", "/rwc/f", wronly | creat | excl, 0o600, allowV, 0, 0o600, no, no},
		// Creation modes: masked with 0666 and the rule's mode=.
		{"setuid dropped", "/rwc/f", wronly | creat, 0o4755, allowV, 0, 0o644, no, no},
		{"setgid and sticky dropped", "/rwc/f", wronly | creat, 0o3777, allowV, 0, 0o666, no, no},
		{"exec bits dropped", "/rwc/f", wronly | creat, 0o777, allowV, 0, 0o666, no, no},
		{"every bit", "/rwc/f", wronly | creat, 0xffffffff, allowV, 0, 0o666, no, no},
		{"mode= narrows", "/narrow/f", wronly | creat, 0o666, allowV, 8, 0o600, 1, 2},
		{"mode= narrows setuid", "/narrow/f", wronly | creat, 0o4777, allowV, 8, 0o600, 1, 2},
		{"mode= and the request both narrow", "/narrow/f", wronly | creat, 0o640, allowV, 8, 0o600, 1, 2},
		{"mode= 0444", "/wc/f", wronly | creat, 0o666, allowV, 9, 0o444, no, no},
		{"mode= 0444 with 0600", "/wc/f", wronly | creat, 0o600, allowV, 9, 0o400, no, no},
		{"requested 0", "/rwc/f", wronly | creat, 0, allowV, 0, 0, no, no},
		{"exact rule create", "/exact", wronly | creat | excl, 0o4640, allowV, 6, 0o640, no, no},
		// No mode, no owner when the open does not create.
		{"mode ignored without O_CREAT", "/rwc/f", wronly, 0o644, allowV, 0, 0, no, no},
		{"owner only when creating", "/narrow/f", rdwr, 0o644, allowV, 8, 0, no, no},
		{"owner only when creating (O_TRUNC)", "/narrow/f", wronly | trunc, 0o644, allowV, 8, 0, no, no},
		// A bad request outranks a denial; a bad path outranks bad flags.
		{"bad flags on a denied path", "/nowhere/x", unix.O_PATH, 0, badV, -1, 0, no, no},
		{"bad flags on a path with no write", "/r/f", wronly | unix.O_NOATIME, 0, badV, -1, 0, no, no},
		{"no rule", "/nowhere/x", wronly | creat, 0o644, denyV, -1, 0, no, no},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := p.Check(tt.path, tt.flags, tt.mode)
			got := allowV
			if err != nil {
				r := refusal(t, err)
				got = verdict{r.Kind, r.Errno}
				if got.kind == policy.Denied && !strings.HasPrefix(err.Error(), "denied by policy: ") ||
					got.kind == policy.BadRequest && !strings.HasPrefix(err.Error(), "bad request: ") {
					t.Errorf("Error(): got %q, want it to say denied or bad request", err)
				}
			}
			if got != tt.want {
				t.Fatalf("Check(%q, %s, %#o): got %v (%v), want %v", tt.path, policy.FlagString(tt.flags), tt.mode, got, err, tt.want)
			}
			if d.Rule != tt.rule {
				t.Errorf("Check(%q, %s): got Rule %d, want %d", tt.path, policy.FlagString(tt.flags), d.Rule, tt.rule)
			}
			if tt.want != allowV {
				return
			}
			if want := tt.flags | forcedFlags; d.Flags != want {
				t.Errorf("Flags: got %s, want %s (O_CLOEXEC|O_NOCTTY always present)", policy.FlagString(d.Flags), policy.FlagString(want))
			}
			if d.Mode != tt.dmode {
				t.Errorf("Mode: got %#o, want %#o", d.Mode, tt.dmode)
			}
			if d.Mode&^0o666 != 0 {
				t.Errorf("Mode: got %#o, want nothing outside 0666", d.Mode)
			}
			if d.UID != tt.uid || d.GID != tt.gid {
				t.Errorf("owner: got %d:%d, want %d:%d", d.UID, d.GID, tt.uid, tt.gid)
			}
			// The model agrees.
			r := p.Rules()[d.Rule]
			if m := model(tt.flags, r.Modes, !r.Tree); m != allowV {
				t.Errorf("model: got %v, want allowed", m)
			}
		})
	}
}

// everyBitOnReadTree spells out, bit 0 first, what a read-only tree rule
// does with O_RDONLY|1<<bit on linux/amd64, checked by hand against the
// kernel's asm-generic/fcntl.h and the issue: A allowed, D denied (EACCES),
// B bad request (EINVAL). Bit 0 is O_WRONLY, 1 O_RDWR, 6 O_CREAT (needs c),
// 7 O_EXCL (without O_CREAT), 9 O_TRUNC (read-only), 10 O_APPEND (harmless
// when reading), 15 the kernel's O_LARGEFILE, 20 __O_SYNC, 22 __O_TMPFILE
// (without O_DIRECTORY).
const everyBitOnReadTree = "DDBBBBDBABAAABBAAABAABBBBBBBBBBB"

func TestEveryBitOnReadTree(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the hand-written table is for amd64")
	}
	if len(everyBitOnReadTree) != 32 {
		t.Fatalf("len(everyBitOnReadTree): got %d, want 32", len(everyBitOnReadTree))
	}
	p := mustParse(t, "/srv/www/")
	for b := range 32 {
		flags := 1 << b
		want := map[byte]verdict{'A': allowV, 'D': denyV, 'B': badV}[everyBitOnReadTree[b]]
		if m := model(flags, policy.Read, false); m != want {
			t.Errorf("bit %d: the model says %v, the hand-written table %v", b, m, want)
		}
		_, err := p.Check("/srv/www/index.html", flags, 0o644)
		got := allowV
		if err != nil {
			r := refusal(t, err)
			got = verdict{r.Kind, r.Errno}
		}
		if got != want {
			t.Errorf("bit %d (%s): got %v (%v), want %v", b, policy.FlagString(flags), got, err, want)
		}
	}
}
