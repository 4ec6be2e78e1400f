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
	// Passed to the kernel as asked (subject to what the rule grants).
	flagsPassed = unix.O_ACCMODE | unix.O_CREAT | unix.O_EXCL | unix.O_TRUNC | unix.O_APPEND |
		unix.O_NONBLOCK | unix.O_DSYNC | unix.O_SYNC | unix.O_DIRECTORY | unix.O_NOFOLLOW |
		kernelLargefile | oTmpfileOnly
	// Accepted and ignored: the opener always sets them.
	flagsForced = unix.O_CLOEXEC | unix.O_NOCTTY
)

// need is what a set of flags asks of a rule.
type need struct {
	read, write bool // access mode
	append      bool // O_APPEND: writes only at the end
	trunc       bool // O_TRUNC
	create      bool // O_CREAT or O_TMPFILE
	tmpfile     bool // O_TMPFILE: an unnamed file in a directory
}

var (
	errAccessMode3     = &Refusal{BadRequest, syscall.EINVAL, "access mode 3 (O_WRONLY|O_RDWR) is not a valid access mode"}
	errFlagRefused     = &Refusal{BadRequest, syscall.EINVAL, "flags include a bit the opener never accepts (O_NOATIME, O_PATH, O_DIRECT, O_ASYNC or unknown)"}
	errTruncReadOnly   = &Refusal{BadRequest, syscall.EINVAL, "O_TRUNC needs write access (O_RDONLY|O_TRUNC would truncate through a read-only open)"}
	errExclNoCreat     = &Refusal{BadRequest, syscall.EINVAL, "O_EXCL without O_CREAT"}
	errTmpfileBad      = &Refusal{BadRequest, syscall.EINVAL, "O_TMPFILE needs O_DIRECTORY, write access and no O_CREAT"}
	errNoRead          = &Refusal{Denied, syscall.EACCES, "the rule does not grant read access (r)"}
	errNoWrite         = &Refusal{Denied, syscall.EACCES, "the rule does not grant write access (w, or a with O_APPEND)"}
	errAppendOnly      = &Refusal{Denied, syscall.EACCES, "the rule grants append only (a): writes need O_APPEND"}
	errTruncAppendOnly = &Refusal{Denied, syscall.EACCES, "the rule grants append only (a): O_TRUNC needs w"}
	errNoCreate        = &Refusal{Denied, syscall.EACCES, "the rule does not grant create (c)"}
	errTmpfileExact    = &Refusal{Denied, syscall.EACCES, "O_TMPFILE needs a tree rule: an exact-file rule names one file, not a directory to create in"}
)

// sanitize checks the flags on their own, whatever the rule: it refuses
// bits the opener never accepts and combinations that make no sense, and
// returns the flags to pass to the kernel with O_CLOEXEC|O_NOCTTY added.
func sanitize(flags int) (int, need, error) {
	acc := flags & unix.O_ACCMODE
	if acc == unix.O_ACCMODE {
		return 0, need{}, errAccessMode3
	}
	if flags&^(flagsPassed|flagsForced) != 0 || flags < 0 || int64(flags) > 0xffffffff {
		return 0, need{}, errFlagRefused
	}
	n := need{
		read:    acc == unix.O_RDONLY || acc == unix.O_RDWR,
		write:   acc == unix.O_WRONLY || acc == unix.O_RDWR,
		append:  flags&unix.O_APPEND != 0,
		trunc:   flags&unix.O_TRUNC != 0,
		tmpfile: flags&oTmpfileOnly != 0,
	}
	n.create = flags&unix.O_CREAT != 0 || n.tmpfile
	switch {
	case n.trunc && !n.write:
		return 0, need{}, errTruncReadOnly
	case n.tmpfile && (flags&unix.O_DIRECTORY == 0 || !n.write || flags&unix.O_CREAT != 0):
		return 0, need{}, errTmpfileBad
	case flags&unix.O_EXCL != 0 && !n.create:
		return 0, need{}, errExclNoCreat
	}
	return flags&flagsPassed | flagsForced, n, nil
}

// grant checks what n asks against what rule r grants.
func grant(r *Rule, n need, exact bool) error {
	switch {
	case n.read && r.Modes&Read == 0:
		return errNoRead
	case n.write && r.Modes&Write == 0 && r.Modes&Append == 0:
		return errNoWrite
	case n.write && r.Modes&Write == 0 && n.trunc:
		return errTruncAppendOnly
	case n.write && r.Modes&Write == 0 && !n.append:
		return errAppendOnly
	case n.create && r.Modes&Create == 0:
		return errNoCreate
	case n.tmpfile && exact:
		return errTmpfileExact
	}
	return nil
}

// SanitizeFlags checks requested open(2) flags on their own, as the opener
// does before it looks at any rule, and returns the flags it would pass to
// the kernel: the accepted bits as asked, plus O_CLOEXEC and O_NOCTTY. The
// error is a *Refusal for a bad request (EINVAL). Whether a rule grants
// what the flags ask is Check's business.
func SanitizeFlags(flags int) (int, error) {
	clean, _, err := sanitize(flags)
	return clean, err
}

// FlagBit describes how one of the 32 flag bits is treated.
type FlagBit struct {
	Bit      uint
	Name     string
	Accepted bool   // false: the bit alone makes a bad request (EINVAL)
	Needs    string // what the rule must grant, or how the bit is handled
}

// FlagTable returns the treatment of each of the 32 bits of the flags word,
// bit 0 first. README.md shows it as a table.
func FlagTable() []FlagBit {
	notes := map[int]string{
		unix.O_WRONLY:               "write access: the rule needs w, or a with O_APPEND",
		unix.O_RDWR:                 "read and write access: the rule needs r, and w or a with O_APPEND",
		unix.O_CREAT:                "the rule needs c",
		unix.O_EXCL:                 "the rule needs c; only with O_CREAT or O_TMPFILE, else EINVAL",
		unix.O_NOCTTY:               "always set",
		unix.O_TRUNC:                "the rule needs w (a never truncates); with read-only access, EINVAL",
		unix.O_APPEND:               "accepted; required for every write under an a rule",
		unix.O_NONBLOCK:             "accepted",
		unix.O_DSYNC:                "accepted",
		kernelLargefile:             "accepted (implied on 64-bit kernels)",
		unix.O_DIRECTORY:            "accepted; a directory's descriptor comes only under a rule with dirs=yes",
		unix.O_NOFOLLOW:             "accepted",
		unix.O_CLOEXEC:              "always set",
		unix.O_SYNC &^ unix.O_DSYNC: "accepted (O_SYNC is this bit with O_DSYNC)",
		oTmpfileOnly:                "O_TMPFILE (with O_DIRECTORY): the rule needs c and write access, and must be a tree rule",
	}
	t := make([]FlagBit, 32)
	for b := uint(0); b < 32; b++ {
		v := 1 << b
		note, ok := notes[v]
		if !ok {
			note = "bad request (EINVAL)"
		}
		t[b] = FlagBit{Bit: b, Name: bitName(v), Accepted: ok, Needs: note}
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
	{kernelLargefile, "O_LARGEFILE"},
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
	rest := uint32(flags) &^ unix.O_ACCMODE
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
		if rest&uint32(f.v) != 0 {
			b.WriteString("|" + f.name)
			rest &^= uint32(f.v)
		}
	}
	if rest != 0 {
		fmt.Fprintf(&b, "|%#x", rest)
	}
	return b.String()
}
