package parent

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Sandbox applies, in this order and to every thread of the process, what
// a sandboxed program needs, and then checks that it holds:
//
//  1. the Landlock ruleset is built, while the process still has its
//     privileges (the rule paths are opened now, so a tree only root can
//     reach can still be granted);
//  2. the supplementary groups become cfg.Credential's (none, usually),
//     then the real, effective and saved gids, then the uids;
//  3. no_new_privs is set, which Landlock requires once the process no
//     longer has CAP_SYS_ADMIN;
//  4. the Landlock ruleset is applied: files, TCP ports, scopes.
//
// Then it verifies: every thread in /proc/self/task has the ids and the
// groups asked for and no_new_privs; becoming root again fails; and,
// under Landlock, opening cfg.Probe fails with EACCES, from the calling
// thread and from another one. Any failure is an error (ErrSandboxVerify
// for a failed check), and the process, partly sandboxed, should exit.
//
// Call it after Start: the opener keeps the privileges the process had
// when it started, and its socket keeps working under Landlock. Every
// thread is reached in programs with and without cgo; there is no partial
// result.
func Sandbox(cfg SandboxConfig) (SandboxResult, error) {
	var res SandboxResult
	var rs *landlockRuleset
	probe := cfg.Probe
	if cfg.Landlock != nil {
		var err error
		rs, res.Landlock, err = newLandlockRuleset(*cfg.Landlock)
		if err != nil {
			return res, err
		}
		if rs != nil {
			defer rs.close()
			if probe == "" {
				if rs.coversRoot {
					return res, errors.New("privsep: sandbox: a Landlock rule grants the root directory; set Probe to a path outside every rule")
				}
				probe = "/"
			}
			if _, err := os.Stat(probe); err != nil {
				return res, fmt.Errorf("privsep: sandbox: the Landlock probe must exist: %w", err)
			}
		}
	}

	var groups []int
	if c := cfg.Credential; c != nil {
		var err error
		if groups, err = setIDs(*c); err != nil {
			return res, err
		}
	}
	if _, err := SetNoNewPrivs(); err != nil {
		return res, err
	}
	// The threads are checked before Landlock, which would refuse reading
	// /proc; Landlock changes neither ids nor no_new_privs.
	n, err := verifyThreads(cfg.Credential, groups)
	if err != nil {
		return res, err
	}
	res.Threads = n
	if c := cfg.Credential; c != nil {
		if err := verifyDropped(*c, groups); err != nil {
			return res, err
		}
	}
	if rs == nil {
		return res, nil
	}
	if err := rs.restrict(); err != nil {
		return res, err
	}
	res.Landlock.Coverage = AllThreads
	if err := verifyLandlocked(probe); err != nil {
		return res, err
	}
	return res, nil
}

// verifyThreads checks every thread of the process in /proc/self/task:
// NoNewPrivs is 1 and, with c, the four uids and gids are c's and the
// supplementary groups exactly groups. It returns how many it checked.
func verifyThreads(c *Credential, groups []int) (int, error) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0, fmt.Errorf("privsep: sandbox: listing the threads: %w", err)
	}
	var want []string
	for _, g := range groups {
		want = append(want, strconv.Itoa(g))
	}
	slices.Sort(want)
	n := 0
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/status")
		if errors.Is(err, os.ErrNotExist) {
			continue // it ended meanwhile
		}
		if err != nil {
			return n, fmt.Errorf("privsep: sandbox: thread %s: %w", task.Name(), err)
		}
		fields := map[string][]string{}
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				fields[k] = strings.Fields(v)
			}
		}
		if got := fields["NoNewPrivs"]; !slices.Equal(got, []string{"1"}) {
			return n, fmt.Errorf("%w: thread %s has NoNewPrivs %v, want 1", ErrSandboxVerify, task.Name(), got)
		}
		if c != nil {
			for k, id := range map[string]int{"Uid": c.UID, "Gid": c.GID} {
				s := strconv.Itoa(id)
				if got := fields[k]; !slices.Equal(got, []string{s, s, s, s}) {
					return n, fmt.Errorf("%w: thread %s has %s %v (real, effective, saved, filesystem), want %d", ErrSandboxVerify, task.Name(), k, got, id)
				}
			}
			got := slices.Clone(fields["Groups"])
			slices.Sort(got)
			if !slices.Equal(got, want) {
				return n, fmt.Errorf("%w: thread %s has groups %v, want %v", ErrSandboxVerify, task.Name(), got, want)
			}
		}
		n++
	}
	return n, nil
}

// verifyLandlocked opens probe for reading from the calling thread and from
// a thread of its own: Landlock must refuse both.
func verifyLandlocked(probe string) error {
	try := func() error {
		fd, err := unix.Open(probe, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			unix.Close(fd)
			return fmt.Errorf("%w: opening %s under Landlock succeeded; it must be outside every rule", ErrSandboxVerify, probe)
		}
		if err != unix.EACCES {
			return fmt.Errorf("%w: opening %s under Landlock: %v, want EACCES", ErrSandboxVerify, probe, err)
		}
		return nil
	}
	if err := try(); err != nil {
		return err
	}
	errc := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		errc <- try()
	}()
	return <-errc
}
