package parent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/privsep-go/privsep/protocol"
)

// ErrDenied is matched (with errors.Is) by every error that reports a request
// the opener refused on purpose: no rule allows it, resolution would leave the
// rule's directory, the file is not a regular file or directory, or it is a
// directory and the rule does not hand out directory descriptors
// (dirs=yes). Such errors also match fs.ErrPermission.
var ErrDenied = errors.New("denied by policy")

// ErrClosed is returned by calls on an Opener after Close.
var ErrClosed = errors.New("privsep: opener closed")

// ErrNoInheritedOpener is returned by Inherited when the environment names
// no opener.
var ErrNoInheritedOpener = errors.New("privsep: no inherited opener (" + OpenerFDEnv + " is not set)")

// ErrRegainedRoot reports that a process that dropped to a user other than
// root could become root again: the drop did not hold.
var ErrRegainedRoot = errors.New("privsep: privileges were dropped but setresuid(0) or setresgid(0) still succeeds")

// RefusedError is the Err of the *fs.PathError that Open returns when the
// opener refused a request rather than the kernel failing it. Errno is the
// errno the opener reported (EACCES for policy denials).
//
// Reason is the wire's reason code. To tell refusals apart without importing
// package protocol, use the predicates (Denied, Escape, ...), one for each
// reason a refusal can have; errors.Is(err, ErrDenied) matches every
// refusal by policy at once.
type RefusedError struct {
	Reason protocol.Reason
	Errno  syscall.Errno
	Why    string // detail, when the parent knows it; may be empty
}

func (e *RefusedError) Error() string {
	var s string
	switch e.Reason {
	case protocol.ReasonDenied:
		s = "denied by policy"
	case protocol.ReasonEscape:
		s = "refused: resolving the path would leave its rule's directory (a symlink that is absolute or points outside, or \"..\")"
	case protocol.ReasonFileType:
		s = "refused: not a regular file or directory"
	case protocol.ReasonLinks:
		s = "refused: a regular file with more than one link (a hard link may lead out of the tree), and the rule has no hardlinks=yes"
	case protocol.ReasonDirectory:
		s = "refused: a directory, and the rule does not hand out directory descriptors (dirs=yes)"
	case protocol.ReasonBadRequest:
		s = "bad request"
	case protocol.ReasonProtocol:
		s = "protocol error"
	default:
		s = e.Reason.String()
	}
	if e.Why != "" {
		s += ": " + e.Why
	}
	// The errno adds nothing to a refusal by policy, and an escape's EXDEV
	// ("invalid cross-device link") would only mislead.
	if (e.Reason == protocol.ReasonBadRequest || e.Reason == protocol.ReasonProtocol) && e.Errno != 0 && e.Why == "" {
		s += " (" + e.Errno.Error() + ")"
	}
	return s
}

// Unwrap returns the errno, so errors.Is(err, syscall.EINVAL) and the like
// work.
func (e *RefusedError) Unwrap() error { return e.Errno }

// Denied reports whether the reason is: no rule allows the path with these flags.
func (e *RefusedError) Denied() bool { return e.Reason == protocol.ReasonDenied }

// Escape reports whether the reason is: resolution would leave the rule's tree.
func (e *RefusedError) Escape() bool { return e.Reason == protocol.ReasonEscape }

// FileType reports whether the reason is: not a regular file or directory.
func (e *RefusedError) FileType() bool { return e.Reason == protocol.ReasonFileType }

// Links reports whether the reason is: more than one link, and no hardlinks=yes.
func (e *RefusedError) Links() bool { return e.Reason == protocol.ReasonLinks }

// Directory reports whether the reason is: a directory, and no dirs=yes.
func (e *RefusedError) Directory() bool { return e.Reason == protocol.ReasonDirectory }

// BadRequest reports whether the reason is: not well formed: path not clean, bad flags.
func (e *RefusedError) BadRequest() bool { return e.Reason == protocol.ReasonBadRequest }

// Protocol reports whether the reason is: the request broke the protocol.
func (e *RefusedError) Protocol() bool { return e.Reason == protocol.ReasonProtocol }

// Limit reports whether the reason is: a server's limit was reached; Errno says which.
func (e *RefusedError) Limit() bool { return e.Reason == protocol.ReasonLimit }

// Is makes refusals by policy match ErrDenied and fs.ErrPermission whatever
// errno the kernel gave (an escape is EXDEV or ELOOP).
func (e *RefusedError) Is(target error) bool {
	denial := e.Reason == protocol.ReasonDenied || e.Reason == protocol.ReasonEscape || e.Reason == protocol.ReasonFileType ||
		e.Reason == protocol.ReasonLinks || e.Reason == protocol.ReasonDirectory
	return denial && (target == ErrDenied || target == fs.ErrPermission)
}

// ConnRefusedError reports that a server refused a connection in the
// handshake, before serving anything: an error with id 0 instead of ready.
// (Dial fails before it gets that far on systems other than Linux.)
type ConnRefusedError struct {
	Reason protocol.Reason
	Errno  syscall.Errno
	// UID is this process's effective uid when it connected: the uid the
	// server saw (SO_PEERCRED), which a per-uid limit counts.
	UID uint32
}

// Unwrap returns the errno the server sent.
func (e *ConnRefusedError) Unwrap() error { return e.Errno }

// Is makes a refusal of who we are match ErrDenied and fs.ErrPermission.
func (e *ConnRefusedError) Is(target error) bool {
	return e.Reason == protocol.ReasonDenied && (target == ErrDenied || target == fs.ErrPermission)
}

// ExitError reports that the opener process ended, or that the connection to
// it failed and it was stopped. Every call pending or made afterwards returns
// it, and Close returns it unless the opener exited with status 0 after
// Close asked it to.
//
// As in exec.ExitError, the process state is embedded, so its methods
// (Exited, Success, Sys, ...) are ExitError's. It is nil when there was no
// process to wait for (a connection from Dial) or the wait failed; those
// methods then panic as on any nil *os.ProcessState, so check ProcessState
// or use ExitCode, which copes.
type ExitError struct {
	// ProcessState says how the opener ended; nil if it could not be waited
	// for (a connection from Dial has no process).
	*os.ProcessState
	// Cause is what the parent saw first: end of stream, a protocol
	// violation, a failed system call. Nil when the process ended on its
	// own.
	Cause error
	// Log holds the opener's last log lines, oldest first.
	Log []string
}

func (e *ExitError) Error() string {
	var b strings.Builder
	b.WriteString("opener ")
	switch ps := e.ProcessState; {
	case ps == nil:
		b.WriteString("connection failed")
	case ps.Exited():
		fmt.Fprintf(&b, "exited with status %d", ps.ExitCode())
		if ps.ExitCode() != 0 {
			fmt.Fprintf(&b, " (%s)", protocol.ExitStatusText(ps.ExitCode()))
		}
	default:
		fmt.Fprintf(&b, "died: %s", ps.String())
	}
	if e.Cause != nil {
		fmt.Fprintf(&b, ": %v", e.Cause)
	}
	// The opener's last words explain an exit it chose; after a signal
	// they are only what it happened to say before.
	if len(e.Log) > 0 && e.ProcessState != nil && e.ProcessState.Exited() && e.ProcessState.ExitCode() != 0 {
		fmt.Fprintf(&b, "; last log: %s", e.Log[len(e.Log)-1])
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *ExitError) Unwrap() error { return e.Cause }

// ExitCode returns the opener's exit status, or -1 if it was killed by a
// signal or could not be waited for.
func (e *ExitError) ExitCode() int {
	if e.ProcessState == nil {
		return -1
	}
	return e.ProcessState.ExitCode()
}

// replyError turns an opener's error reply into the error Open returns.
func replyError(path string, e protocol.ErrorReply) error {
	errno := syscall.Errno(e.Errno)
	if e.Reason == protocol.ReasonSystem {
		return &fs.PathError{Op: "open", Path: path, Err: errno}
	}
	return &fs.PathError{Op: "open", Path: path, Err: &RefusedError{Reason: e.Reason, Errno: errno}}
}

// RuleDirError is the error Start returns when the opener refused the
// policy because a tree rule's directory did not resolve at the handshake
// (it does not exist, or is not a directory) and the rule does not say
// optional=yes. Rule and Dir name the first such rule the parent finds; they
// are empty if it found none (the opener saw something the parent does
// not). Err is the start's error, with the opener's own account in its log.
type RuleDirError struct {
	Rule  string        // the rule as the policy writes it
	Dir   string        // its directory
	Errno syscall.Errno // what resolving it gave the opener (ENOENT when missing)
	Err   error
}

func (e *RuleDirError) Error() string {
	if e.Rule == "" {
		return fmt.Sprintf("a rule directory did not resolve (%v); create it, or add optional=yes to its rule: %v", e.Errno, e.Err)
	}
	return fmt.Sprintf("rule %q: directory %s: %v; create it, or add optional=yes to the rule if it may be missing", e.Rule, e.Dir, e.Errno)
}

// Unwrap returns the start's error.
func (e *RuleDirError) Unwrap() error { return e.Err }
