package parent

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// SetNoNewPrivs sets PR_SET_NO_NEW_PRIVS on every thread of the process:
// from now on execve can grant no privileges (setuid bits and file
// capabilities are ignored), for the process and everything it runs. It
// reaches every thread with or without cgo (see allThreadsSyscall); it
// returns AllThreads or an error.
func SetNoNewPrivs() (Coverage, error) {
	if err := allThreadsSyscall(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); err != nil {
		return 0, fmt.Errorf("privsep: prctl(PR_SET_NO_NEW_PRIVS) on every thread: %w", err)
	}
	return AllThreads, nil
}

// Landlock restricts the process with Landlock, on top of no_new_privs,
// which Landlock requires and which it sets. It handles every right and
// scope the kernel's ABI knows, and grants back only what cfg names. The
// restriction cannot be undone and is inherited by every program the
// process runs.
//
// Every thread is restricted: by the kernel at once where it can (ABI 8,
// TSYNC), else by running landlock_restrict_self on each thread, with or
// without cgo (see allThreadsSyscall). A nil error means every thread.
// Opened descriptors, the opener's socket included, keep working: Landlock
// checks opening paths, binding and connecting, not using descriptors.
func Landlock(cfg LandlockConfig) (LandlockResult, error) {
	rs, res, err := newLandlockRuleset(cfg)
	if err != nil || rs == nil {
		return res, err
	}
	defer rs.close()
	if _, err := SetNoNewPrivs(); err != nil {
		return res, err
	}
	if err := rs.restrict(); err != nil {
		return res, err
	}
	res.Coverage = AllThreads
	return res, nil
}

// landlockRight is one right or scope Landlock can restrict.
type landlockRight struct {
	name string
	kind int    // landlockFS, landlockNet or landlockScope
	bit  uint64 // its bit in the ruleset's handled_access_fs, _net or scoped
	abi  int    // the first ABI version that knows it
}

const (
	landlockFS = iota
	landlockNet
	landlockScope
)

// The net-port rule type and its attribute (uapi linux/landlock.h, ABI 4),
// which golang.org/x/sys/unix does not define.
const landlockRuleNetPort = 2

type landlockNetPortAttr struct {
	allowedAccess uint64
	port          uint64
}

// landlockRulesetAttr is struct landlock_ruleset_attr as of ABI 6. The
// kernel is told its size by ABI (see rulesetAttrSize), so an older kernel
// never sees fields it does not know.
type landlockRulesetAttr struct {
	handledFS, handledNet, scoped uint64
}

// rulesetAttrSize is how much of landlockRulesetAttr a kernel of ABI abi
// reads.
func rulesetAttrSize(abi int) uintptr {
	switch {
	case abi >= 6:
		return 24
	case abi >= 4:
		return 16
	}
	return 8
}

// landlockRights lists every right and scope privsep handles, with the ABI
// that brought it. Rights of later ABIs are not handled, and so not
// restricted, until privsep knows them.
func landlockRights() []landlockRight {
	return []landlockRight{
		{"LANDLOCK_ACCESS_FS_EXECUTE", landlockFS, unix.LANDLOCK_ACCESS_FS_EXECUTE, 1},
		{"LANDLOCK_ACCESS_FS_WRITE_FILE", landlockFS, unix.LANDLOCK_ACCESS_FS_WRITE_FILE, 1},
		{"LANDLOCK_ACCESS_FS_READ_FILE", landlockFS, unix.LANDLOCK_ACCESS_FS_READ_FILE, 1},
		{"LANDLOCK_ACCESS_FS_READ_DIR", landlockFS, unix.LANDLOCK_ACCESS_FS_READ_DIR, 1},
		{"LANDLOCK_ACCESS_FS_REMOVE_DIR", landlockFS, unix.LANDLOCK_ACCESS_FS_REMOVE_DIR, 1},
		{"LANDLOCK_ACCESS_FS_REMOVE_FILE", landlockFS, unix.LANDLOCK_ACCESS_FS_REMOVE_FILE, 1},
		{"LANDLOCK_ACCESS_FS_MAKE_CHAR", landlockFS, unix.LANDLOCK_ACCESS_FS_MAKE_CHAR, 1},
		{"LANDLOCK_ACCESS_FS_MAKE_DIR", landlockFS, unix.LANDLOCK_ACCESS_FS_MAKE_DIR, 1},
		{"LANDLOCK_ACCESS_FS_MAKE_REG", landlockFS, unix.LANDLOCK_ACCESS_FS_MAKE_REG, 1},
		{"LANDLOCK_ACCESS_FS_MAKE_SOCK", landlockFS, unix.LANDLOCK_ACCESS_FS_MAKE_SOCK, 1},
		{"LANDLOCK_ACCESS_FS_MAKE_FIFO", landlockFS, unix.LANDLOCK_ACCESS_FS_MAKE_FIFO, 1},
		{"LANDLOCK_ACCESS_FS_MAKE_BLOCK", landlockFS, unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK, 1},
		{"LANDLOCK_ACCESS_FS_MAKE_SYM", landlockFS, unix.LANDLOCK_ACCESS_FS_MAKE_SYM, 1},
		{"LANDLOCK_ACCESS_FS_REFER", landlockFS, unix.LANDLOCK_ACCESS_FS_REFER, 2},
		{"LANDLOCK_ACCESS_FS_TRUNCATE", landlockFS, unix.LANDLOCK_ACCESS_FS_TRUNCATE, 3},
		{"LANDLOCK_ACCESS_NET_BIND_TCP", landlockNet, unix.LANDLOCK_ACCESS_NET_BIND_TCP, 4},
		{"LANDLOCK_ACCESS_NET_CONNECT_TCP", landlockNet, unix.LANDLOCK_ACCESS_NET_CONNECT_TCP, 4},
		{"LANDLOCK_ACCESS_FS_IOCTL_DEV", landlockFS, unix.LANDLOCK_ACCESS_FS_IOCTL_DEV, 5},
		{"LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET", landlockScope, unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET, 6},
		{"LANDLOCK_SCOPE_SIGNAL", landlockScope, unix.LANDLOCK_SCOPE_SIGNAL, 6},
	}
}

// landlockPlan is what a ruleset handles on a kernel of a given ABI.
type landlockPlan struct {
	fs, net, scoped uint64
	notApplied      []string // asked for, but unknown to the ABI
}

// planLandlock decides what a ruleset for cfg handles on a kernel of ABI
// abi (0: no Landlock), and fails, unless cfg.BestEffort, when the kernel
// lacks something cfg asks for. It makes no system call.
func planLandlock(abi int, cfg LandlockConfig) (landlockPlan, error) {
	var p landlockPlan
	if cfg.AnyTCP && (len(cfg.BindTCP) > 0 || len(cfg.ConnectTCP) > 0) {
		return p, errors.New("privsep: landlock: AnyTCP leaves every port open; BindTCP and ConnectTCP must be empty with it")
	}
	for _, r := range landlockRights() {
		switch {
		case r.kind == landlockNet && cfg.AnyTCP,
			r.bit == unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET && r.kind == landlockScope && cfg.AllowAbstractUnix,
			r.bit == unix.LANDLOCK_SCOPE_SIGNAL && r.kind == landlockScope && cfg.AllowSignals:
			continue // not asked for
		case r.abi > abi:
			p.notApplied = append(p.notApplied, r.name)
			continue
		}
		switch r.kind {
		case landlockFS:
			p.fs |= r.bit
		case landlockNet:
			p.net |= r.bit
		case landlockScope:
			p.scoped |= r.bit
		}
	}
	if p.net != 0 && !haveMPTCPFilter() {
		// Landlock leaves MPTCP sockets out of its TCP rules, and privsep
		// has no filter for them here (see mptcp_linux.go).
		p.notApplied = append(p.notApplied, "IPPROTO_MPTCP")
	}
	if abi > 0 && len(p.notApplied) > 0 && !cfg.BestEffort {
		return p, &LandlockUnsupportedError{ABI: abi, Missing: p.notApplied}
	}
	return p, nil
}

// landlockRuleset is a ruleset built and not yet applied. Its descriptor
// is owned by it until close.
type landlockRuleset struct {
	fd         int
	abi        int
	tcp        bool // TCP is restricted, and so MPTCP sockets must be refused
	coversRoot bool // some rule is the root directory itself
}

func (rs *landlockRuleset) close() { unix.Close(rs.fd) }

// landlockABIVersion asks the kernel for its Landlock ABI version.
func landlockABIVersion() (int, unix.Errno) {
	abi, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	return int(abi), e
}

// newLandlockRuleset builds the ruleset for cfg: what the kernel handles,
// and a rule for each path and port cfg allows. The paths are opened now,
// with the privileges the process has now. It returns a nil ruleset and a
// nil error when, with BestEffort, the kernel has no Landlock.
func newLandlockRuleset(cfg LandlockConfig) (*landlockRuleset, LandlockResult, error) {
	abi, e := landlockABIVersion()
	if e != 0 {
		if e != unix.ENOSYS && e != unix.EOPNOTSUPP {
			return nil, LandlockResult{}, fmt.Errorf("privsep: landlock ABI probe: %w", e)
		}
		if !cfg.BestEffort {
			return nil, LandlockResult{}, fmt.Errorf("privsep: %w (%v)", ErrNoLandlock, e)
		}
		p, err := planLandlock(0, cfg)
		return nil, LandlockResult{NotApplied: p.notApplied}, err
	}
	res := LandlockResult{ABI: abi}
	p, err := planLandlock(abi, cfg)
	if err != nil {
		return nil, res, err
	}
	res.NotApplied = p.notApplied
	attr := landlockRulesetAttr{handledFS: p.fs, handledNet: p.net, scoped: p.scoped}
	fd, e := landlockCreateRuleset(&attr, rulesetAttrSize(abi))
	if e != 0 {
		return nil, res, fmt.Errorf("privsep: landlock_create_ruleset: %w", e)
	}
	rs := &landlockRuleset{fd: int(fd), abi: abi, tcp: p.net != 0}

	var root unix.Stat_t
	if err := unix.Stat("/", &root); err != nil {
		rs.close()
		return nil, res, fmt.Errorf("privsep: landlock: stat /: %w", err)
	}
	readExec := uint64(unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR)
	for _, rule := range []struct {
		paths  []string
		access uint64
	}{{cfg.ReadOnly, readExec & p.fs}, {cfg.ReadWrite, p.fs}} {
		for _, path := range rule.paths {
			st, err := landlockAllowPath(rs.fd, path, rule.access)
			if errors.Is(err, unix.ENOENT) && cfg.AllowMissing {
				res.Missing = append(res.Missing, path)
				continue
			}
			if err != nil {
				rs.close()
				return nil, res, err
			}
			if st.Dev == root.Dev && st.Ino == root.Ino {
				rs.coversRoot = true
			}
		}
	}
	if dir := psxTaskDir(); dir != "" && p.fs&unix.LANDLOCK_ACCESS_FS_READ_DIR != 0 {
		if _, err := landlockAllowPath(rs.fd, dir, unix.LANDLOCK_ACCESS_FS_READ_DIR); err != nil {
			rs.close()
			return nil, res, err
		}
	}
	if p.net != 0 {
		for _, port := range cfg.BindTCP {
			if err := landlockAllowPort(rs.fd, port, unix.LANDLOCK_ACCESS_NET_BIND_TCP); err != nil {
				rs.close()
				return nil, res, err
			}
		}
		for _, port := range cfg.ConnectTCP {
			if err := landlockAllowPort(rs.fd, port, unix.LANDLOCK_ACCESS_NET_CONNECT_TCP); err != nil {
				rs.close()
				return nil, res, err
			}
		}
	}
	return rs, res, nil
}

// restrict applies the ruleset to every thread. no_new_privs must already
// hold on every thread (or the process have CAP_SYS_ADMIN).
func (rs *landlockRuleset) restrict() error {
	if rs.tcp {
		if err := refuseMPTCP(); err != nil {
			return err
		}
	}
	if rs.abi >= 8 {
		// The kernel restricts every thread at once, with one domain.
		_, _, e := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(rs.fd), unix.LANDLOCK_RESTRICT_SELF_TSYNC, 0)
		if e == 0 {
			return nil
		}
		if e != unix.EINVAL {
			return fmt.Errorf("privsep: landlock_restrict_self(TSYNC): %w", e)
		}
		// EINVAL: the flag is unknown after all; each thread, then.
	}
	if err := allThreadsSyscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(rs.fd), 0, 0); err != nil {
		return fmt.Errorf("privsep: landlock_restrict_self on every thread: %w", err)
	}
	return nil
}

// landlockFileRights are the rights a rule on a file (not a directory) may
// carry: the others concern directory entries, and the kernel refuses them
// there.
const landlockFileRights = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE |
	unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_TRUNCATE | unix.LANDLOCK_ACCESS_FS_IOCTL_DEV

// landlockAllowPath adds a rule granting access beneath path, and returns
// what path is. An error wraps the errno (ENOENT for a missing path).
func landlockAllowPath(ruleset int, path string, access uint64) (unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return st, fmt.Errorf("privsep: landlock rule %s: %w", path, err)
	}
	defer unix.Close(fd)
	if err := unix.Fstat(fd, &st); err != nil {
		return st, fmt.Errorf("privsep: landlock rule %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		access &= landlockFileRights
	}
	if access == 0 {
		return st, nil // nothing handled to grant back (BestEffort without filesystem rights)
	}
	attr := unix.LandlockPathBeneathAttr{Allowed_access: access, Parent_fd: int32(fd)}
	if e := landlockAddPathRule(ruleset, &attr); e != 0 {
		return st, fmt.Errorf("privsep: landlock rule %s: %w", path, e)
	}
	return st, nil
}

// landlockAllowPort adds a rule granting access (bind or connect) to a TCP
// port.
func landlockAllowPort(ruleset int, port uint16, access uint64) error {
	attr := landlockNetPortAttr{allowedAccess: access, port: uint64(port)}
	if e := landlockAddPortRule(ruleset, &attr); e != 0 {
		return fmt.Errorf("privsep: landlock rule for TCP port %d: %w", port, e)
	}
	return nil
}
