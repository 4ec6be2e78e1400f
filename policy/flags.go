package policy

import (
	"fmt"
	"strings"
	"syscall"
)

// oTmpfileOnly is O_TMPFILE without the O_DIRECTORY bit it includes.
const oTmpfileOnly = oTmpfile &^ oDirectory

// How each open(2) flag is treated. Every bit outside these sets is a bad
// request.
const (
	// Passed to the kernel as asked (subject to what the rule grants).
	flagsPassed = oAccmode | oCreat | oExcl | oTrunc | oAppend |
		oNonblock | oDsync | oSync | oDirectory | oNofollow |
		kernelLargefile | oTmpfileOnly
	// Accepted and ignored: the opener always sets them.
	flagsForced = oCloexec | oNoctty
)

// need is what a set of flags asks of a rule.
type need struct {
	read, write bool // access mode
	append      bool // O_APPEND: writes only at the end
	trunc       bool // O_TRUNC
	create      bool // O_CREAT or O_TMPFILE
	tmpfile     bool // O_TMPFILE: an unnamed file in a directory
}

// The flag refusals, each a constant Refusal (see Refusal for why).
func errAccessMode3() error {
	return Refusal{BadRequest, syscall.EINVAL, "access mode 3 (O_WRONLY|O_RDWR) is not a valid access mode"}
}
func errFlagRefused() error {
	return Refusal{BadRequest, syscall.EINVAL, "flags include a bit the opener never accepts (O_NOATIME, O_PATH, O_DIRECT, O_ASYNC or unknown)"}
}
func errTruncReadOnly() error {
	return Refusal{BadRequest, syscall.EINVAL, "O_TRUNC needs write access (O_RDONLY|O_TRUNC would truncate through a read-only open)"}
}
func errExclNoCreat() error { return Refusal{BadRequest, syscall.EINVAL, "O_EXCL without O_CREAT"} }
func errTmpfileBad() error {
	return Refusal{BadRequest, syscall.EINVAL, "O_TMPFILE needs O_DIRECTORY, write access and no O_CREAT"}
}
func errNoRead() error {
	return Refusal{Denied, syscall.EACCES, "the rule does not grant read access (r)"}
}
func errNoWrite() error {
	return Refusal{Denied, syscall.EACCES, "the rule does not grant write access (w, or a with O_APPEND)"}
}
func errAppendOnly() error {
	return Refusal{Denied, syscall.EACCES, "the rule grants append only (a): writes need O_APPEND"}
}
func errTruncAppendOnly() error {
	return Refusal{Denied, syscall.EACCES, "the rule grants append only (a): O_TRUNC needs w"}
}
func errNoCreate() error {
	return Refusal{Denied, syscall.EACCES, "the rule does not grant create (c)"}
}
func errTmpfileExact() error {
	return Refusal{Denied, syscall.EACCES, "O_TMPFILE needs a tree rule: an exact-file rule names one file, not a directory to create in"}
}

// sanitize checks the flags on their own, whatever the rule: it refuses
// bits the opener never accepts and combinations that make no sense, and
// returns the flags to pass to the kernel with O_CLOEXEC|O_NOCTTY added.
func sanitize(flags int) (int, need, error) {
	acc := flags & oAccmode
	if acc == oAccmode {
		return 0, need{}, errAccessMode3()
	}
	if flags&^(flagsPassed|flagsForced) != 0 || flags < 0 || int64(flags) > 0xffffffff {
		return 0, need{}, errFlagRefused()
	}
	n := need{
		read:    acc == oRdonly || acc == oRdwr,
		write:   acc == oWronly || acc == oRdwr,
		append:  flags&oAppend != 0,
		trunc:   flags&oTrunc != 0,
		tmpfile: flags&oTmpfileOnly != 0,
	}
	n.create = flags&oCreat != 0 || n.tmpfile
	switch {
	case n.trunc && !n.write:
		return 0, need{}, errTruncReadOnly()
	case n.tmpfile && (flags&oDirectory == 0 || !n.write || flags&oCreat != 0):
		return 0, need{}, errTmpfileBad()
	case flags&oExcl != 0 && !n.create:
		return 0, need{}, errExclNoCreat()
	}
	return flags&flagsPassed | flagsForced, n, nil
}

// grant checks what n asks against what rule r grants.
func grant(r *Rule, n need, exact bool) error {
	switch {
	case n.read && r.Modes&Read == 0:
		return errNoRead()
	case n.write && r.Modes&Write == 0 && r.Modes&Append == 0:
		return errNoWrite()
	case n.write && r.Modes&Write == 0 && n.trunc:
		return errTruncAppendOnly()
	case n.write && r.Modes&Write == 0 && !n.append:
		return errAppendOnly()
	case n.create && r.Modes&Create == 0:
		return errNoCreate()
	case n.tmpfile && exact:
		return errTmpfileExact()
	}
	return nil
}

// SanitizeFlags checks requested open(2) flags on their own, as the opener
// does before it looks at any rule, and returns the flags it would pass to
// the kernel: the accepted bits as asked, plus O_CLOEXEC and O_NOCTTY. The
// error is a Refusal for a bad request (EINVAL). Whether a rule grants
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
		oWronly:         "write access: the rule needs w, or a with O_APPEND",
		oRdwr:           "read and write access: the rule needs r, and w or a with O_APPEND",
		oCreat:          "the rule needs c",
		oExcl:           "the rule needs c; only with O_CREAT or O_TMPFILE, else EINVAL",
		oNoctty:         "always set",
		oTrunc:          "the rule needs w (a never truncates); with read-only access, EINVAL",
		oAppend:         "accepted; required for every write under an a rule",
		oNonblock:       "accepted",
		oDsync:          "accepted",
		kernelLargefile: "accepted (implied on 64-bit kernels)",
		oDirectory:      "accepted; a directory's descriptor comes only under a rule with dirs=yes",
		oNofollow:       "accepted",
		oCloexec:        "always set",
		oSync &^ oDsync: "accepted (O_SYNC is this bit with O_DSYNC)",
		oTmpfileOnly:    "O_TMPFILE (with O_DIRECTORY): the rule needs c and write access, and must be a tree rule",
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
	{oWronly, "O_WRONLY"},
	{oRdwr, "O_RDWR"},
	{oCreat, "O_CREAT"},
	{oExcl, "O_EXCL"},
	{oNoctty, "O_NOCTTY"},
	{oTrunc, "O_TRUNC"},
	{oAppend, "O_APPEND"},
	{oNonblock, "O_NONBLOCK"},
	{oDsync, "O_DSYNC"},
	{oAsync, "O_ASYNC"},
	{oDirect, "O_DIRECT"},
	{kernelLargefile, "O_LARGEFILE"},
	{oDirectory, "O_DIRECTORY"},
	{oNofollow, "O_NOFOLLOW"},
	{oNoatime, "O_NOATIME"},
	{oCloexec, "O_CLOEXEC"},
	{oSync &^ oDsync, "__O_SYNC"},
	{oPath, "O_PATH"},
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
	switch flags & oAccmode {
	case oRdonly:
		b.WriteString("O_RDONLY")
	case oWronly:
		b.WriteString("O_WRONLY")
	case oRdwr:
		b.WriteString("O_RDWR")
	default:
		b.WriteString("O_ACCMODE(3)")
	}
	rest := uint32(flags) &^ oAccmode
	if rest&oTmpfile == oTmpfile {
		b.WriteString("|O_TMPFILE")
		rest &^= oTmpfile
	}
	if rest&oSync == oSync {
		b.WriteString("|O_SYNC")
		rest &^= oSync
	}
	for _, f := range flagNames {
		if f.v&oAccmode != 0 || f.v == 0 {
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
