//go:build linux

package opener

import (
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/privsep-go/privsep/policy"
)

// Ruleset is a compiled policy with its directories open: what serving
// requests needs. It is immutable once made, and may be shared by many
// sessions. The descriptors belong to the DirTable that opened them.
type Ruleset struct {
	pol     *policy.Policy
	rules   []string        // pol's rules as written, for the audit log
	dirs    []int           // O_PATH descriptors of pol.Dirs(), then of the socket directories; -1 where resolving failed
	dirErr  []syscall.Errno // why a dir could not be opened
	sockDir map[string]int  // a unix listen rule's address → index in dirs of its directory
	onProc  []bool          // dirs[i] is on procfs: requests under it may land there
	openat2 bool
}

// NewRuleset opens the policy's rule directories, and the directory of
// every unix-socket listen rule, through t: each resolved once, from the
// pinned root. A tree rule's directory that cannot be opened is fatal (a
// *MissingDirError naming the rule) unless the rule says optional=yes; an
// optional one, or the directory of exact-file rules, is not: requests
// under its rules fail with the same errno, which is what a plain open
// would have said. One that resolves into a process's own /proc directory
// is fatal too (an *OwnProcessError).
func NewRuleset(log hclog.Logger, pol *policy.Policy, t *DirTable) (*Ruleset, error) {
	rs := &Ruleset{pol: pol, rules: pol.Strings(), openat2: t.openat2, sockDir: make(map[string]int)}
	trees := make(map[string]bool)
	required := make(map[string]string) // a tree directory → a non-optional rule naming it
	for _, r := range pol.Rules() {
		if r.Tree {
			trees[r.Path] = true
			if _, ok := required[r.Path]; !r.Optional && !ok {
				required[r.Path] = r.String()
			}
		}
	}
	add := func(d string) error {
		fd, errno, err := t.open(d, trees[d])
		if err != nil {
			return err
		}
		if rule, ok := required[d]; ok && errno != 0 {
			return &MissingDirError{Rule: rule, Dir: d, Errno: errno}
		}
		if errno != 0 {
			log.Warn("rule directory unavailable", "dir", d, "error", errno.Error())
		}
		rs.dirs = append(rs.dirs, fd)
		rs.dirErr = append(rs.dirErr, errno)
		rs.onProc = append(rs.onProc, fd >= 0 && isProcfs(fd))
		return nil
	}
	for _, d := range pol.Dirs() {
		if err := add(d); err != nil {
			return nil, err
		}
	}
	for _, r := range pol.Rules() {
		if r.Network != "unix" {
			continue
		}
		d, _ := SplitSocketPath(r.Addr)
		rs.sockDir[r.Addr] = len(rs.dirs)
		if err := add(d); err != nil {
			return nil, err
		}
	}
	return rs, nil
}
