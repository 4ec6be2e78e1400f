package trampoline

import (
	"os"
	"slices"
	"strconv"
	"testing"
)

// TestArgsRoundTrip checks that what Args writes, Main's parser reads:
// the moves to their targets, the kept descriptors after 0, 1 and 2, and
// the command; and that the copies sit above every target.
func TestArgsRoundTrip(t *testing.T) {
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	argv, err := Args([]*os.File{f, f}, []int{9, 3}, []int{5}, "/bin/true", []string{"true", "x"})
	if err != nil {
		t.Fatal(err)
	}
	if !Is(argv) {
		t.Fatalf("Is(%q) = false", argv)
	}
	moves, keep, rest, err := parseArgs(argv[2:])
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range moves {
		defer syscallClose(m[0])
		if m[0] <= 9 {
			t.Errorf("copy at %d, want above 9, the highest target", m[0])
		}
	}
	if len(moves) != 2 || moves[0][1] != 9 || moves[1][1] != 3 {
		t.Errorf("moves %v, want targets 9 then 3", moves)
	}
	if !slices.Equal(keep, []int{0, 1, 2, 5}) {
		t.Errorf("keep %v, want [0 1 2 5]", keep)
	}
	if !slices.Equal(rest, []string{"/bin/true", "true", "x"}) {
		t.Errorf("command %q, want /bin/true true x", rest)
	}
}

// TestParseArgsRefuses checks that a malformed argv is refused, not run.
func TestParseArgsRefuses(t *testing.T) {
	for _, args := range [][]string{
		{"keep:2", "--", "/bin/true", "true"},
		{"keep:x", "--", "/bin/true", "true"},
		{"3-4", "--", "/bin/true", "true"},
		{"10:3", "--", "/bin/true"},
		{"10:3"},
	} {
		if _, _, _, err := parseArgs(args); err == nil {
			t.Errorf("parseArgs(%q) = nil error", args)
		}
	}
}

func syscallClose(fd int) { os.NewFile(uintptr(fd), strconv.Itoa(fd)).Close() }
