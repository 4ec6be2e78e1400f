package opener

import "fmt"

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
