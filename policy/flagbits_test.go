//go:build linux

package policy_test

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/policy"
)

func TestSanitizeFlags(t *testing.T) {
	tests := []struct {
		name  string
		flags int
		want  int // -1: a bad request
	}{
		{"O_RDONLY", unix.O_RDONLY, forcedFlags},
		{"O_CLOEXEC already", unix.O_CLOEXEC, forcedFlags},
		{"O_NOCTTY already", unix.O_NOCTTY, forcedFlags},
		{"O_WRONLY|O_CREAT|O_EXCL", unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL, unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | forcedFlags},
		{"O_RDWR|O_TMPFILE", unix.O_RDWR | unix.O_TMPFILE, unix.O_RDWR | unix.O_TMPFILE | forcedFlags},
		{"O_WRONLY|O_SYNC", unix.O_WRONLY | unix.O_SYNC, unix.O_WRONLY | unix.O_SYNC | forcedFlags},
		{"kernel O_LARGEFILE", kernelLargefile, kernelLargefile | forcedFlags},
		{"every accepted read bit", unix.O_NONBLOCK | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_DSYNC | unix.O_APPEND,
			unix.O_NONBLOCK | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_DSYNC | unix.O_APPEND | forcedFlags},
		{"O_WRONLY|O_TRUNC (the rule decides)", unix.O_WRONLY | unix.O_TRUNC, unix.O_WRONLY | unix.O_TRUNC | forcedFlags},
		{"access mode 3", 3, -1},
		{"O_RDONLY|O_TRUNC", unix.O_TRUNC, -1},
		{"O_EXCL", unix.O_EXCL, -1},
		{"O_TMPFILE read-only", unix.O_TMPFILE, -1},
		{"O_PATH", unix.O_PATH, -1},
		{"O_NOATIME", unix.O_NOATIME, -1},
		{"O_DIRECT", unix.O_DIRECT, -1},
		{"O_ASYNC", unix.O_ASYNC, -1},
		{"O_WRONLY|O_NOATIME", unix.O_WRONLY | unix.O_NOATIME, -1},
		{"-1", -1, -1},
		{"bit31 as int32", int(int32(-1 << 31)), -1},
	}
	if strconv.IntSize == 64 {
		// Variables, not constants: the constants overflow a 32-bit int
		// even in a branch that never runs there.
		bit32, bit62 := int64(1)<<32, int64(1)<<62
		tests = append(tests,
			struct {
				name  string
				flags int
				want  int
			}{"bit32", int(bit32), -1},
			struct {
				name  string
				flags int
				want  int
			}{"bit62|O_NONBLOCK", int(bit62) | unix.O_NONBLOCK, -1},
		)
	}
	for _, tt := range tests {
		got, err := policy.SanitizeFlags(tt.flags)
		if tt.want == -1 {
			if err == nil {
				t.Errorf("SanitizeFlags(%s = %#x): got %s, nil, want a bad request", tt.name, tt.flags, policy.FlagString(got))
				continue
			}
			if r := refusal(t, err); r.Kind != policy.BadRequest || r.Errno != syscall.EINVAL || got != 0 {
				t.Errorf("SanitizeFlags(%s): got %#x, kind %d errno %v, want 0, a bad request with EINVAL", tt.name, got, r.Kind, r.Errno)
			}
			if !flagsBad(tt.flags) {
				t.Errorf("%s: the model says the flags are fine", tt.name)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("SanitizeFlags(%s = %#x): got %s, %v, want %s, nil", tt.name, tt.flags, policy.FlagString(got), err, policy.FlagString(tt.want))
		}
		if flagsBad(tt.flags) {
			t.Errorf("%s: the model says the flags are bad", tt.name)
		}
	}
}

// namedBits are the names FlagTable must give the bits it knows (amd64
// values; bits not named are shown in hex).
var namedBits = map[uint]string{
	0: "O_WRONLY", 1: "O_RDWR", 6: "O_CREAT", 7: "O_EXCL", 8: "O_NOCTTY", 9: "O_TRUNC",
	10: "O_APPEND", 11: "O_NONBLOCK", 12: "O_DSYNC", 13: "O_ASYNC", 14: "O_DIRECT",
	15: "O_LARGEFILE", 16: "O_DIRECTORY", 17: "O_NOFOLLOW", 18: "O_NOATIME",
	19: "O_CLOEXEC", 20: "__O_SYNC", 21: "O_PATH", 22: "__O_TMPFILE",
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
		if runtime.GOARCH == "amd64" {
			want, ok := namedBits[uint(i)]
			if !ok {
				want = fmt.Sprintf("%#x", 1<<i)
			}
			if fb.Name != want {
				t.Errorf("FlagTable()[%d].Name: got %q, want %q", i, fb.Name, want)
			}
		}
		if fb.Needs == "" {
			t.Errorf("FlagTable()[%d] (%s): empty Needs", i, fb.Name)
		}
		if want := knownFlags&(1<<i) != 0; fb.Accepted != want {
			t.Errorf("FlagTable()[%d] (%s): Accepted %v, want %v", i, fb.Name, fb.Accepted, want)
		}
		if !fb.Accepted {
			if !strings.Contains(fb.Needs, "EINVAL") {
				t.Errorf("FlagTable()[%d] (%s): Needs %q, want it to say EINVAL", i, fb.Name, fb.Needs)
			}
			// Not accepted: a bad request alone and with anything else.
			for _, acc := range []int{unix.O_RDONLY, unix.O_WRONLY, unix.O_RDWR} {
				if _, err := policy.SanitizeFlags(acc | 1<<i); err == nil {
					t.Errorf("SanitizeFlags(%s): got nil, want a bad request as FlagTable says", policy.FlagString(acc|1<<i))
				}
			}
		}
	}
	// What the table says of the bits that need something from the rule.
	for bit, word := range map[int]string{
		unix.O_CREAT:    "c",
		unix.O_TRUNC:    "w",
		unix.O_APPEND:   "a",
		tmpfileBit:      "tree",
		unix.O_CLOEXEC:  "always",
		unix.O_NOCTTY:   "always",
		unix.O_EXCL:     "O_CREAT",
		unix.O_WRONLY:   "w",
		unix.O_NONBLOCK: "accepted",
	} {
		for _, fb := range table {
			if 1<<fb.Bit == bit && !strings.Contains(fb.Needs, word) {
				t.Errorf("FlagTable() %s: Needs %q, want it to mention %q", fb.Name, fb.Needs, word)
			}
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
		{unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC, "O_WRONLY|O_CREAT|O_TRUNC"},
		{unix.O_SYNC, "O_RDONLY|O_SYNC"},
		{unix.O_DSYNC, "O_RDONLY|O_DSYNC"},
		{unix.O_SYNC &^ unix.O_DSYNC, "O_RDONLY|__O_SYNC"},
		{unix.O_TMPFILE | unix.O_RDWR, "O_RDWR|O_TMPFILE"},
		{tmpfileBit | unix.O_RDWR, "O_RDWR|__O_TMPFILE"},
		{unix.O_DIRECTORY, "O_RDONLY|O_DIRECTORY"},
		{unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NOCTTY, "O_RDONLY|O_NOCTTY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC"},
		{unix.O_PATH | 0x4, "O_RDONLY|O_PATH|0x4"},
		{0x4, "O_RDONLY|0x4"},
	}
	if runtime.GOARCH == "amd64" {
		tests = append(tests, struct {
			flags int
			want  string
		}{kernelLargefile, "O_RDONLY|O_LARGEFILE"})
	}
	for _, tt := range tests {
		if got := policy.FlagString(tt.flags); got != tt.want {
			t.Errorf("FlagString(%#x): got %q, want %q", tt.flags, got, tt.want)
		}
	}
}
