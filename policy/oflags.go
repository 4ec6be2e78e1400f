package policy

// The open(2) flags the policy reads are Linux's, on every host: the wire
// carries the opener's flag values, and the opener only runs on Linux.
// They are constants here rather than golang.org/x/sys/unix names so that
// the package builds, with no system-call package, on every platform Go
// targets. Linux numbers most bits per architecture family: the bits every
// family numbers alike are here, the rest in a file per family
// (oflags_*.go); oflags_linux_test.go checks every value against
// x/sys/unix at compile time, so `go vet` for a GOARCH fails if one drifts.
// A Linux GOARCH with no file does not build, rather than guess its bits.

// The access mode is the same two bits on every architecture.
const (
	oAccmode = 0x3
	oRdonly  = 0x0
	oWronly  = 0x1
	oRdwr    = 0x2
)

// The bits that are the same in every Linux architecture Go supports.
const (
	oTrunc   = 0x200
	oNoatime = 0x40000
	oCloexec = 0x80000
	oPath    = 0x200000

	// O_TMPFILE is the kernel's __O_TMPFILE bit with O_DIRECTORY (so that a
	// kernel that does not know the bit fails the open rather than open the
	// directory): it follows O_DIRECTORY from family to family.
	oTmpfile = 0x400000 | oDirectory
)
