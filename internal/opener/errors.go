package opener

import (
	"fmt"
	"syscall"
)

// OwnProcessError reports a rule directory that resolves into a process's
// own directory on procfs (/proc/self, /proc/<pid>, /proc/thread-self): a
// rule there would hand out the opener's own memory, descriptors and
// credentials. The opener refuses the whole policy.
type OwnProcessError struct {
	Dir string // the rule's directory as the policy names it
	Why string
}

func (e *OwnProcessError) Error() string {
	return fmt.Sprintf("rule directory %s: %s; refusing the policy (rules may not reach into a process's own /proc directory)", e.Dir, e.Why)
}

// MissingDirError reports a tree rule whose directory did not resolve at the
// handshake, and that does not say optional=yes: every request under it
// would fail, and a directory created later would not be seen, so the
// opener refuses the whole policy rather than start broken.
type MissingDirError struct {
	Rule  string        // the rule as the policy writes it
	Dir   string        // the rule's directory
	Errno syscall.Errno // why it did not resolve (ENOENT when it does not exist)
}

func (e *MissingDirError) Error() string {
	return fmt.Sprintf("rule %q: directory %s: %v; refusing the policy (create the directory, or add optional=yes to the rule if it may be missing)", e.Rule, e.Dir, e.Errno)
}
