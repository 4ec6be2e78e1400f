package policy

import (
	"fmt"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// oTmpfileOnly is O_TMPFILE without the O_DIRECTORY bit it includes.
const oTmpfileOnly = unix.O_TMPFILE &^ unix.O_DIRECTORY

// How each open(2) flag is treated. Every bit outside these sets is a bad
// request.
const (
	// Accepted with read access and passed to the kernel as asked.
	flagsPassed = unix.O_NONBLOCK | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_LARGEFILE
	// Accepted and ignored: the opener always sets them.
	flagsForced = unix.O_CLOEXEC | unix.O_NOCTTY
	// Well formed, but they write, create or truncate, which no rule of
	// this version grants: denied.
	flagsWrite = unix.O_WRONLY | unix.O_RDWR | unix.O_CREAT | unix.O_EXCL | unix.O_TRUNC |
		unix.O_APPEND | unix.O_DSYNC | unix.O_SYNC | oTmpfileOnly
)

var (
	errAccessMode3   = &Refusal{BadRequest, syscall.EINVAL, "access mode 3 (O_WRONLY|O_RDWR) is not a valid access mode"}
	errFlagRefused   = &Refusal{BadRequest, syscall.EINVAL, "flags include a bit the opener never accepts (O_NOATIME, O_PATH, O_DIRECT, O_ASYNC or unknown)"}
	errWriteNotAllow = &Refusal{Denied, syscall.EACCES, "write, create, append and truncate flags need a rule that grants them; this policy is read-only"}
)

// SanitizeFlags checks requested open(2) flags and returns the flags the
// opener passes to the kernel: the accepted bits as asked, plus O_CLOEXEC and
// O_NOCTTY. The error is a *Refusal: a bad request (EINVAL) for bits that are
// never accepted, a denial (EACCES) for bits that would need write access.
func SanitizeFlags(flags int) (int, Mode, error) {
	if flags&unix.O_ACCMODE == unix.O_ACCMODE {
		return 0, 0, errAccessMode3
	}
	if flags&^(flagsPassed|flagsForced|flagsWrite) != 0 {
		return 0, 0, errFlagRefused
	}
	if flags&flagsWrite != 0 {
		return 0, 0, errWriteNotAllow
	}
	return flags&flagsPassed | flagsForced, Read, nil
}

// FlagDecision is how one flag bit is treated.
type FlagDecision string

// The decisions FlagTable reports.
const (
	FlagPassed   FlagDecision = "accepted"
	FlagForced   FlagDecision = "always set"
	FlagDenied   FlagDecision = "denied (EACCES): needs write access"
	FlagRefused  FlagDecision = "bad request (EINVAL)"
	FlagInactive FlagDecision = "no bit on this platform"
)

// FlagBit describes one of the 32 flag bits.
type FlagBit struct {
	Bit      uint
	Name     string
	Decision FlagDecision
}

// FlagTable returns the decision for each of the 32 bits of the flags word,
// bit 0 first. Access mode 3 (both low bits) is a bad request even though
// each low bit alone is only denied.
func FlagTable() []FlagBit {
	t := make([]FlagBit, 32)
	for b := uint(0); b < 32; b++ {
		v := 1 << b
		d := FlagRefused
		switch {
		case v&flagsPassed != 0:
			d = FlagPassed
		case v&flagsForced != 0:
			d = FlagForced
		case v&flagsWrite != 0:
			d = FlagDenied
		}
		t[b] = FlagBit{Bit: b, Name: bitName(v), Decision: d}
	}
	return t
}

var flagNames = []struct {
	v    int
	name string
}{
	{unix.O_WRONLY, "O_WRONLY"},
	{unix.O_RDWR, "O_RDWR"},
	{unix.O_CREAT, "O_CREAT"},
	{unix.O_EXCL, "O_EXCL"},
	{unix.O_NOCTTY, "O_NOCTTY"},
	{unix.O_TRUNC, "O_TRUNC"},
	{unix.O_APPEND, "O_APPEND"},
	{unix.O_NONBLOCK, "O_NONBLOCK"},
	{unix.O_DSYNC, "O_DSYNC"},
	{unix.O_ASYNC, "O_ASYNC"},
	{unix.O_DIRECT, "O_DIRECT"},
	{unix.O_LARGEFILE, "O_LARGEFILE"},
	{unix.O_DIRECTORY, "O_DIRECTORY"},
	{unix.O_NOFOLLOW, "O_NOFOLLOW"},
	{unix.O_NOATIME, "O_NOATIME"},
	{unix.O_CLOEXEC, "O_CLOEXEC"},
	{unix.O_SYNC &^ unix.O_DSYNC, "__O_SYNC"},
	{unix.O_PATH, "O_PATH"},
	{oTmpfileOnly, "__O_TMPFILE"},
}

func bitName(v int) string {
	for _, f := range flagNames {
		if f.v == v {
			return f.name
		}
	}
	return fmt.Sprintf("%#x", v)
}

// FlagString writes flags in words, the way audit logs show them:
// "O_RDONLY|O_NONBLOCK", "O_WRONLY|O_APPEND", with unknown bits in hex.
func FlagString(flags int) string {
	var b strings.Builder
	switch flags & unix.O_ACCMODE {
	case unix.O_RDONLY:
		b.WriteString("O_RDONLY")
	case unix.O_WRONLY:
		b.WriteString("O_WRONLY")
	case unix.O_RDWR:
		b.WriteString("O_RDWR")
	default:
		b.WriteString("O_ACCMODE(3)")
	}
	rest := flags &^ unix.O_ACCMODE
	if rest&unix.O_TMPFILE == unix.O_TMPFILE {
		b.WriteString("|O_TMPFILE")
		rest &^= unix.O_TMPFILE
	}
	if rest&unix.O_SYNC == unix.O_SYNC {
		b.WriteString("|O_SYNC")
		rest &^= unix.O_SYNC
	}
	for _, f := range flagNames {
		if f.v&unix.O_ACCMODE != 0 || f.v == 0 {
			continue
		}
		if rest&f.v != 0 {
			b.WriteString("|" + f.name)
			rest &^= f.v
		}
	}
	if rest != 0 {
		fmt.Fprintf(&b, "|%#x", uint32(rest))
	}
	return b.String()
}
