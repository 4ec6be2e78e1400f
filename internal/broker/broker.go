package broker

import (
	"errors"
	"syscall"
)

// ErrUnsupported is returned by InstallFilter and Serve where the broker
// is not built: off Linux, and on Linux architectures whose system call
// numbers this package does not list (it knows amd64 and arm64).
var ErrUnsupported = errors.New("privsep: the open broker is not supported on this platform")

// Syscall names the notified call, for the Decider's logs.
type Syscall string

const (
	SysOpen    Syscall = "open"
	SysOpenat  Syscall = "openat"
	SysOpenat2 Syscall = "openat2"
	SysCreat   Syscall = "creat"
)

// Request is one open call a program made, as the supervisor read it once
// from the program's memory. Every field is the program's word, not a
// fact: the Decider must treat it as untrusted input, exactly like an
// Open request over the socket.
type Request struct {
	Syscall Syscall
	// PID is the calling thread's id, in the supervisor's pid namespace.
	PID int
	// Raw is the path exactly as the program passed it.
	Raw string
	// Path is Raw made absolute: as given when Raw starts with "/", else
	// joined to the path of the program's directory descriptor (its
	// current directory for AT_FDCWD) as the supervisor's kernel names
	// it. It is "" when no absolute path could be composed (the
	// directory was deleted, or lies outside the supervisor's root): a
	// Decider then answers Continue, or refuses.
	Path string
	// Flags are the open flags as asked; creat is reported as
	// O_CREAT|O_WRONLY|O_TRUNC.
	Flags int
	// Mode is the creation mode as asked (meaningful with O_CREAT or
	// O_TMPFILE only).
	Mode uint32
	// Resolve is openat2's open_how.resolve, 0 for the other calls. The
	// broker does not interpret it: a Decider that serves a call with
	// RESOLVE_ flags must honour them itself, or answer Continue.
	Resolve uint64
}

// Answer is a Decider's reply to one Request. Build it with Place,
// Fail or Continue; the zero Answer fails the call with EACCES.
type Answer struct {
	kind  answerKind
	fd    int
	errno syscall.Errno
}

type answerKind uint8

const (
	answerRefuse answerKind = iota // the zero value: EACCES
	answerPlace
	answerFail
	answerContinue
)

// Place answers with a descriptor: the broker installs a copy of fd in
// the program as the call's result (with close-on-exec when the program
// asked O_CLOEXEC) and closes fd. Serve takes ownership of fd.
func Place(fd int) Answer { return Answer{kind: answerPlace, fd: fd} }

// Fail answers with an error: the call returns -1 with errno set to e.
// Fail(0) fails with EACCES: a call is never made to return 0.
func Fail(e syscall.Errno) Answer { return Answer{kind: answerFail, errno: e} }

// Continue lets the kernel carry out the call itself, with the program's
// own credentials, as if the broker were not there.
//
// N.B. the kernel reads the path from the program's memory again, after
// the decision: a program can change it in between (from another thread).
// That is harmless only because the call then runs with the program's own
// credentials: Continue never grants anything. Never answer Continue to
// mean "allowed".
func Continue() Answer { return Answer{kind: answerContinue} }

// A Decider serves the requests a Serve loop receives. Decide is called
// from several goroutines at once, one per pending call, and must not
// block for long: a program thread waits for each answer.
type Decider interface {
	Decide(r *Request) Answer
}

// DeciderFunc adapts a function to Decider.
type DeciderFunc func(r *Request) Answer

// Decide calls f(r).
func (f DeciderFunc) Decide(r *Request) Answer { return f(r) }
