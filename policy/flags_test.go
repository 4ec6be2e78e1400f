package policy_test

import (
	"fmt"
	"runtime"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/policy"
)

type flagOutcome byte

const (
	allow flagOutcome = 'A' // allowed, O_CLOEXEC|O_NOCTTY added
	deny  flagOutcome = 'D' // denied, EACCES: needs write access
	bad   flagOutcome = 'B' // bad request, EINVAL
)

// namedFlags is what the policy must do with each named open(2) bit. Bits
// not named here are unknown and must be bad requests.
var namedFlags = []struct {
	name string
	v    int
	want flagOutcome
}{
	{"O_WRONLY", unix.O_WRONLY, deny},
	{"O_RDWR", unix.O_RDWR, deny},
	{"O_CREAT", unix.O_CREAT, deny},
	{"O_EXCL", unix.O_EXCL, deny},
	{"O_NOCTTY", unix.O_NOCTTY, allow},
	{"O_TRUNC", unix.O_TRUNC, deny},
	{"O_APPEND", unix.O_APPEND, deny},
	{"O_NONBLOCK", unix.O_NONBLOCK, allow},
	{"O_DSYNC", unix.O_DSYNC, deny},
	{"O_ASYNC", unix.O_ASYNC, bad},
	{"O_DIRECT", unix.O_DIRECT, bad},
	{"O_LARGEFILE", unix.O_LARGEFILE, allow}, // 0 on 64-bit platforms
	{"O_DIRECTORY", unix.O_DIRECTORY, allow},
	{"O_NOFOLLOW", unix.O_NOFOLLOW, allow},
	{"O_NOATIME", unix.O_NOATIME, bad},
	{"O_CLOEXEC", unix.O_CLOEXEC, allow},
	{"__O_SYNC", unix.O_SYNC &^ unix.O_DSYNC, deny},
	{"O_PATH", unix.O_PATH, bad},
	{"__O_TMPFILE", unix.O_TMPFILE &^ unix.O_DIRECTORY, deny},
}

// amd64Bits spells out, bit 0 first, the expected outcome of each bit on
// linux/amd64, checked by hand against the kernel's asm-generic/fcntl.h, as
// a check on namedFlags. Bit 15 is the kernel's O_LARGEFILE (0x8000), which
// userspace on amd64 defines as 0, so it is an unknown bit there.
const amd64Bits = "DDBBBBDDADDADBBBAABADBDBBBBBBBBB"

type flagCase struct {
	name  string
	flags int
	want  flagOutcome
}

func everyFlagCase(t *testing.T) []flagCase {
	t.Helper()
	var cases []flagCase
	for b := range 32 {
		v := 1 << b
		c := flagCase{name: fmt.Sprintf("bit%02d_%#x", b, v), flags: v, want: bad}
		for _, f := range namedFlags {
			if f.v == v {
				c.name, c.want = fmt.Sprintf("bit%02d_%s", b, f.name), f.want
			}
		}
		if runtime.GOARCH == "amd64" {
			if len(amd64Bits) != 32 {
				t.Fatalf("len(amd64Bits): got %d, want 32", len(amd64Bits))
			}
			if hand := flagOutcome(amd64Bits[b]); hand != c.want {
				t.Fatalf("bit %d (%s): namedFlags says %c, amd64Bits says %c", b, c.name, c.want, hand)
			}
		}
		cases = append(cases, c)
	}
	cases = append(cases,
		flagCase{"O_RDONLY", unix.O_RDONLY, allow},
		flagCase{"access mode 3", unix.O_ACCMODE, bad},
		flagCase{"access mode 3|O_CREAT", unix.O_ACCMODE | unix.O_CREAT, bad},
		flagCase{"access mode 3|O_NONBLOCK", unix.O_ACCMODE | unix.O_NONBLOCK, bad},
		flagCase{"O_RDONLY|O_TRUNC", unix.O_RDONLY | unix.O_TRUNC, deny},
		flagCase{"O_TMPFILE", unix.O_TMPFILE, deny},
		flagCase{"O_TMPFILE|O_RDWR", unix.O_TMPFILE | unix.O_RDWR, deny},
		flagCase{"O_SYNC", unix.O_SYNC, deny},
		flagCase{"O_WRONLY|O_CREAT|O_EXCL", unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL, deny},
		flagCase{"O_DIRECTORY|O_CREAT", unix.O_DIRECTORY | unix.O_CREAT, deny},
		flagCase{"every accepted bit", unix.O_NONBLOCK | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_LARGEFILE | unix.O_CLOEXEC | unix.O_NOCTTY, allow},
		flagCase{"O_DIRECTORY|O_NOFOLLOW", unix.O_DIRECTORY | unix.O_NOFOLLOW, allow},
		// A bit that is never accepted outweighs one that is only denied.
		flagCase{"O_WRONLY|O_NOATIME", unix.O_WRONLY | unix.O_NOATIME, bad},
		flagCase{"O_NONBLOCK|O_PATH", unix.O_NONBLOCK | unix.O_PATH, bad},
		flagCase{"O_PATH|O_DIRECTORY", unix.O_PATH | unix.O_DIRECTORY, bad},
		flagCase{"-1", -1, bad},
		flagCase{"bit31 as int32", int(int32(-1 << 31)), bad},
	)
	if strconv.IntSize == 64 {
		cases = append(cases,
			flagCase{"bit32", 1 << 32, bad},
			flagCase{"bit62|O_NONBLOCK", 1<<62 | unix.O_NONBLOCK, bad},
		)
	}
	return cases
}

func TestFlagsEveryBit(t *testing.T) {
	p := mustParse(t, "/srv/www/")
	for _, tt := range everyFlagCase(t) {
		t.Run(tt.name, func(t *testing.T) {
			got, mode, err := policy.SanitizeFlags(tt.flags)
			d, cerr := p.Check("/srv/www/index.html", tt.flags)
			switch tt.want {
			case allow:
				if err != nil {
					t.Fatalf("SanitizeFlags(%#x): got error %v, want allowed", tt.flags, err)
				}
				if cerr != nil {
					t.Fatalf("Check(_, %#x): got error %v, want allowed", tt.flags, cerr)
				}
				if mode != policy.Read {
					t.Errorf("SanitizeFlags(%#x) mode: got %v, want %v", tt.flags, mode, policy.Read)
				}
				if got&forcedFlags != forcedFlags {
					t.Errorf("SanitizeFlags(%#x): got %s, want O_CLOEXEC|O_NOCTTY included", tt.flags, policy.FlagString(got))
				}
				if extra := got &^ acceptedFlags; extra != 0 {
					t.Errorf("SanitizeFlags(%#x): got %s, want no bits outside the accepted set (extra %#x)", tt.flags, policy.FlagString(got), extra)
				}
				if want := tt.flags | forcedFlags; got != want {
					t.Errorf("SanitizeFlags(%#x): got %s, want %s", tt.flags, policy.FlagString(got), policy.FlagString(want))
				}
				if d.Flags != got {
					t.Errorf("Check(_, %#x).Flags: got %#x, want %#x as SanitizeFlags says", tt.flags, d.Flags, got)
				}
			case deny, bad:
				kind, errno := policy.Denied, syscall.EACCES
				if tt.want == bad {
					kind, errno = policy.BadRequest, syscall.EINVAL
				}
				for _, e := range []error{err, cerr} {
					if e == nil {
						t.Fatalf("%s (%#x): got allowed, want kind %d errno %v", tt.name, tt.flags, kind, errno)
					}
					r := refusal(t, e)
					if r.Kind != kind || r.Errno != errno {
						t.Errorf("%s (%#x): got kind %d errno %v (%v), want kind %d errno %v", tt.name, tt.flags, r.Kind, r.Errno, e, kind, errno)
					}
				}
				if got != 0 || mode != 0 {
					t.Errorf("SanitizeFlags(%#x) refused: got flags %#x mode %v, want 0, 0", tt.flags, got, mode)
				}
			}
		})
	}
}

func TestFlagTable(t *testing.T) {
	table := policy.FlagTable()
	if len(table) != 32 {
		t.Fatalf("len(FlagTable()): got %d, want 32", len(table))
	}
	for i, fb := range table {
		if fb.Bit != uint(i) {
			t.Errorf("FlagTable()[%d].Bit: got %d, want %d", i, fb.Bit, i)
		}
		v := 1 << i
		wantName := fmt.Sprintf("%#x", v)
		for _, f := range namedFlags {
			if f.v == v {
				wantName = f.name
			}
		}
		if fb.Name != wantName {
			t.Errorf("FlagTable()[%d].Name: got %q, want %q", i, fb.Name, wantName)
		}
		got, _, err := policy.SanitizeFlags(v)
		var want policy.FlagDecision
		switch {
		case err == nil && v&forcedFlags != 0:
			want = policy.FlagForced
		case err == nil:
			want = policy.FlagPassed
			if got&v == 0 {
				t.Errorf("bit %d (%s) is passed, but SanitizeFlags(%#x) dropped it: got %#x", i, fb.Name, v, got)
			}
		case refusal(t, err).Kind == policy.Denied:
			want = policy.FlagDenied
		default:
			want = policy.FlagRefused
		}
		if fb.Decision != want {
			t.Errorf("FlagTable()[%d] (%s): got %q, want %q as SanitizeFlags decides", i, fb.Name, fb.Decision, want)
		}
	}
}

func TestFlagString(t *testing.T) {
	tests := []struct {
		flags int
		want  string
	}{
		{unix.O_RDONLY, "O_RDONLY"},
		{unix.O_RDONLY | unix.O_NONBLOCK, "O_RDONLY|O_NONBLOCK"},
		{unix.O_WRONLY | unix.O_APPEND, "O_WRONLY|O_APPEND"},
		{unix.O_RDWR, "O_RDWR"},
		{unix.O_ACCMODE, "O_ACCMODE(3)"},
		{unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_CLOEXEC, "O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC"},
		{unix.O_SYNC, "O_RDONLY|O_SYNC"},
		{unix.O_DSYNC, "O_RDONLY|O_DSYNC"},
		{unix.O_SYNC &^ unix.O_DSYNC, "O_RDONLY|__O_SYNC"},
		{unix.O_TMPFILE | unix.O_RDWR, "O_RDWR|O_TMPFILE"},
		{unix.O_DIRECTORY, "O_RDONLY|O_DIRECTORY"},
		{unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NOCTTY, "O_RDONLY|O_NOCTTY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC"},
		{unix.O_PATH | 0x4, "O_RDONLY|O_PATH|0x4"},
		{0x4, "O_RDONLY|0x4"},
	}
	for _, tt := range tests {
		if got := policy.FlagString(tt.flags); got != tt.want {
			t.Errorf("FlagString(%#x): got %q, want %q", tt.flags, got, tt.want)
		}
	}
}
