package policy

// The open(2) flags the policy reads are Linux's, on every host: the wire
// carries the opener's flag values, and the opener only runs on Linux.
// They are constants here rather than golang.org/x/sys/unix names so that
// the package builds, with no system-call package, on every platform Go
// targets. Linux numbers most bits per architecture family, so each family
// has a file (oflags_*.go); oflags_linux_test.go checks every value against
// x/sys/unix at compile time, so `go vet` for a GOARCH fails if one drifts.
// A Linux GOARCH with no file does not build, rather than guess its bits.

// The access mode is the same two bits on every architecture.
const (
	oAccmode = 0x3
	oRdonly  = 0x0
	oWronly  = 0x1
	oRdwr    = 0x2
)
