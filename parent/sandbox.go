package parent

// The types of the sandbox, on every platform; the calls that apply it are
// in landlock_linux.go and sequence_linux.go.

import (
	"errors"
	"fmt"
	"strings"
)

// Coverage says which threads a process-wide restriction reached.
//
// Deprecated: SetNoNewPrivs and Landlock now reach every thread of the
// process or return an error, in programs with and without cgo, so a
// successful call always reports AllThreads.
type Coverage int

const (
	// AllThreads: every thread of the process, and so everything it runs
	// from now on.
	AllThreads Coverage = iota + 1
	// CallingThread is never reported any more. It meant that only the
	// calling thread was restricted, which left a multi-threaded program
	// open: a partial restriction is now an error.
	//
	// Deprecated: kept so that code naming it still compiles.
	CallingThread
)

func (c Coverage) String() string {
	switch c {
	case AllThreads:
		return "all threads"
	case CallingThread:
		return "the calling thread only"
	}
	return "none"
}

// ErrNoLandlock is matched by the error Landlock returns when the kernel has
// no Landlock (too old, or not enabled among its security modules).
var ErrNoLandlock = errors.New("landlock is not available in this kernel")

// LandlockConfig says what a Landlock restriction leaves allowed. The zero
// value denies everything Landlock can restrict: every filesystem access,
// binding and connecting TCP sockets (ABI 4), connecting to abstract unix
// sockets made outside the sandbox and signalling processes outside it
// (ABI 6). A sandboxed parent then reaches files only through its opener
// and the descriptors it already holds.
type LandlockConfig struct {
	// ReadOnly paths (files or directory trees) stay readable, and
	// executable. Nothing beneath them may be written, truncated, created,
	// removed or renamed.
	ReadOnly []string
	// ReadWrite paths (files or directory trees) keep every filesystem
	// right: read, write, execute, truncate, device ioctls and, for trees,
	// creating, removing and renaming beneath them.
	ReadWrite []string
	// BindTCP are the TCP ports that may still be bound (0 allows an
	// ephemeral port), ConnectTCP those that may still be connected to.
	// Every other port is refused. They need ABI 4. Landlock's TCP rules
	// do not cover MPTCP sockets, so while TCP is restricted a seccomp
	// filter makes creating one fail with EACCES (Go's net package then
	// uses plain TCP), and refuses io_uring, which makes sockets without
	// socket(2); it is inherited by every program the process runs.
	// Where privsep has no such filter (see TCPRestrictable), restricting
	// TCP is reported as not applying IPPROTO_MPTCP.
	BindTCP, ConnectTCP []uint16
	// AnyTCP leaves TCP unrestricted: binding and connecting any port.
	// BindTCP and ConnectTCP must then be empty.
	AnyTCP bool
	// AllowAbstractUnix leaves connecting (and sending datagrams) to
	// abstract unix sockets made outside the sandbox allowed. Without it
	// (ABI 6) they are refused: an abstract socket has no file, so no
	// filesystem rule protects it, and a root service listening on one is
	// otherwise reachable.
	AllowAbstractUnix bool
	// AllowSignals leaves signalling processes outside the sandbox
	// allowed. Without it (ABI 6) only processes started from inside the
	// sandbox, and the process's own threads, may be signalled, which
	// includes that the process cannot kill an opener it started before
	// (the opener still ends when its socket is closed).
	AllowSignals bool
	// AllowMissing skips a rule path that does not exist (and lists it in
	// LandlockResult.Missing). Without it a missing path is an error: a
	// typo would otherwise grant nothing and go unnoticed.
	AllowMissing bool
	// BestEffort applies whatever the kernel's Landlock ABI can, and lists
	// in LandlockResult.NotApplied every restriction it could not. A
	// kernel without Landlock is then a success with ABI 0 and nothing
	// restricted. Without BestEffort, a restriction the kernel cannot
	// apply is an error (*LandlockUnsupportedError, or ErrNoLandlock
	// without Landlock at all). Reaching every thread is never best
	// effort.
	BestEffort bool
}

// LandlockResult reports what Landlock did.
type LandlockResult struct {
	ABI int // the kernel's Landlock ABI version; 0 when unavailable
	// Coverage is AllThreads when a ruleset was applied, 0 when nothing
	// was (BestEffort without Landlock).
	//
	// Deprecated: a nil error always means every thread.
	Coverage Coverage
	// NotApplied names, with BestEffort, each restriction the kernel could
	// not apply, by its kernel name ("LANDLOCK_ACCESS_FS_IOCTL_DEV",
	// "LANDLOCK_ACCESS_NET_BIND_TCP", "LANDLOCK_SCOPE_SIGNAL", ...): what
	// it names stays allowed.
	NotApplied []string
	// Missing lists, with AllowMissing, the rule paths that did not exist
	// and were skipped.
	Missing []string
}

// LandlockUnsupportedError is the error Landlock returns, without
// BestEffort, when the kernel's ABI cannot apply every restriction asked
// for.
type LandlockUnsupportedError struct {
	ABI     int      // the kernel's Landlock ABI version
	Missing []string // the restrictions it lacks, by kernel name
}

func (e *LandlockUnsupportedError) Error() string {
	return fmt.Sprintf("privsep: landlock ABI %d cannot apply %s (BestEffort applies the rest)", e.ABI, strings.Join(e.Missing, ", "))
}

// SandboxConfig says what Sandbox makes of the process.
type SandboxConfig struct {
	// Credential is the user to become (see LookupCredential, which must
	// run before). Nil keeps the process's ids, and skips the check that
	// root cannot be regained.
	Credential *Credential
	// Landlock is what stays allowed under Landlock. Nil applies no
	// Landlock; a zero LandlockConfig denies everything it can restrict.
	Landlock *LandlockConfig
	// Probe is a path outside every Landlock rule that the verification
	// opens for reading: the open must be refused. Empty means the root
	// directory, which must then not be a rule itself.
	Probe string
}

// SandboxResult reports what Sandbox did.
type SandboxResult struct {
	Landlock LandlockResult // zero without SandboxConfig.Landlock
	// Threads is how many threads the verification found, each with the
	// ids and no_new_privs it checked.
	Threads int
}

// ErrSandboxVerify is matched by the error Sandbox returns when the kernel
// did not do what it was asked: a thread that kept other ids, a thread
// without no_new_privs, an open outside the Landlock rules that
// succeeded. The process must not go on as if it were sandboxed.
var ErrSandboxVerify = errors.New("privsep: sandbox verification failed")
