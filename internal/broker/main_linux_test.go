//go:build linux && (amd64 || arm64)

package broker

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/testutil"
)

// The test binary plays every process the tests need, chosen by roleEnv
// (the os/exec TestMain pattern):
//
//	trampoline  the program side: drop to nobody, no_new_privs, install
//	            the filter, send the listener over fd 3, wait for the
//	            ack, execve os.Args[1:]
//	supervisor  a Serve loop in its own process, for the tests that kill
//	            it (listener from fd 3)
//	probe       a brokered Go program making calls cat and Python cannot
//	            (openat2, paths across pages, bad addresses)
//	loop        a brokered Go program opening a file N times, for figures
const (
	roleEnv     = "PRIVSEP_BROKER_TEST_ROLE"
	execRoleEnv = "PRIVSEP_BROKER_TEST_EXEC_ROLE" // the role of what the trampoline execs
	cwdEnv      = "PRIVSEP_BROKER_TEST_CWD"
	noFilterEnv = "PRIVSEP_BROKER_TEST_NO_FILTER" // trampoline: stay root, no filter (direct figures)
	landlockEnv = "PRIVSEP_BROKER_TEST_LANDLOCK"  // trampoline: Landlock read-only to the system dirs
	nobody      = 65534
)

func TestMain(m *testing.M) {
	roles := map[string]func(args []string) int{
		"trampoline": trampolineMain,
		"supervisor": supervisorMain,
		"probe":      probeMain,
		"int80":      int80Main,
		"swap":       swapMain,
		"loop":       loopMain,
	}
	if role, ok := roles[os.Getenv(roleEnv)]; ok {
		os.Exit(role(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func trampolineMain(argv []string) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "trampoline: "+format+"\n", a...)
		return 120
	}
	if len(argv) == 0 {
		return fail("no command")
	}
	runtime.LockOSThread()
	if d := os.Getenv(cwdEnv); d != "" {
		if err := os.Chdir(d); err != nil {
			return fail("%v", err)
		}
	}
	env := os.Environ()
	for i, e := range env {
		if len(e) > len(roleEnv) && e[:len(roleEnv)+1] == roleEnv+"=" {
			env[i] = roleEnv + "=" + os.Getenv(execRoleEnv)
		}
	}
	if os.Getenv(noFilterEnv) == "1" {
		return fail("%v", syscall.Exec(argv[0], argv, env))
	}
	if err := syscall.Setgroups(nil); err != nil {
		return fail("setgroups: %v", err)
	}
	if err := syscall.Setresgid(nobody, nobody, nobody); err != nil {
		return fail("setresgid: %v", err)
	}
	if err := syscall.Setresuid(nobody, nobody, nobody); err != nil {
		return fail("setresuid: %v", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fail("no_new_privs: %v", err)
	}
	if os.Getenv(landlockEnv) == "1" {
		// What --landlock would do: the program reaches the system's
		// files for reading and nothing else by path.
		if err := landlockReadOnly("/usr", "/lib", "/lib64", "/bin", "/etc", "/dev/null"); err != nil {
			return fail("landlock: %v", err)
		}
	}
	lfd, err := InstallFilter()
	if err != nil {
		return fail("%v", err)
	}
	if err := unix.Sendmsg(3, []byte{'L'}, unix.UnixRights(lfd), nil, 0); err != nil {
		return fail("sending the listener: %v", err)
	}
	var ack [1]byte
	if n, err := unix.Read(3, ack[:]); n != 1 || err != nil {
		return fail("no ack from the supervisor (%d, %v)", n, err)
	}
	unix.Close(lfd)
	unix.CloseOnExec(3)
	err = syscall.Exec(argv[0], argv, env)
	return fail("exec %s: %v", argv[0], err)
}

// recvListener receives the listener the trampoline sends on sock and
// acknowledges nothing yet.
func recvListener(sock int) (int, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return -1, err
	}
	if n == 0 {
		return -1, fmt.Errorf("the trampoline closed the socket before sending a listener")
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return -1, fmt.Errorf("no listener in the message (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return -1, fmt.Errorf("want one listener, got %d (%v)", len(fds), err)
	}
	return fds[0], nil
}

// supervisorMain serves the rules in argv with the test decider; a call
// for a path ending in "/block" prints "blocked" and never gets an answer.
func supervisorMain(rules []string) int {
	d, err := newTestDeciderErr(rules)
	if err != nil {
		fmt.Fprintln(os.Stderr, "supervisor:", err)
		return 1
	}
	lfd, err := recvListener(3)
	if err != nil {
		fmt.Fprintln(os.Stderr, "supervisor:", err)
		return 1
	}
	fmt.Printf("listener %3d\n", lfd) // for a watcher that holds a copy
	inner := d
	blocking := DeciderFunc(func(r *Request) Answer {
		if len(r.Path) > 6 && r.Path[len(r.Path)-6:] == "/block" {
			fmt.Println("blocked")
			select {}
		}
		return inner.Decide(r)
	})
	unix.Write(3, []byte{'A'})
	if err := Serve(context.Background(), lfd, blocking); err != nil {
		fmt.Fprintln(os.Stderr, "supervisor:", err)
		return 1
	}
	return 0
}

func loopMain(args []string) int {
	if len(args) != 2 {
		return 2
	}
	n, _ := strconv.Atoi(args[1])
	d, err := testutil.OpenLoop(args[0], n)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loop:", err)
		return 1
	}
	fmt.Println(d.Nanoseconds())
	return 0
}

// landlockReadOnly restricts this process to reading and executing
// beneath paths (those that exist), with the raw Landlock calls: package
// parent, which has the real helper, imports this package (through the
// trampoline), so a test here cannot import it.
func landlockReadOnly(paths ...string) error {
	const fsRead = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR
	attr := unix.LandlockRulesetAttr{Handled_access_fs: fsRead | unix.LANDLOCK_ACCESS_FS_WRITE_FILE |
		unix.LANDLOCK_ACCESS_FS_MAKE_REG | unix.LANDLOCK_ACCESS_FS_REMOVE_FILE}
	rs, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr), 0)
	if e != 0 {
		return fmt.Errorf("landlock_create_ruleset: %w", e)
	}
	defer unix.Close(int(rs))
	for _, p := range paths {
		fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		access := uint64(fsRead)
		if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			access = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_READ_FILE
		}
		rule := unix.LandlockPathBeneathAttr{Allowed_access: access, Parent_fd: int32(fd)}
		_, _, e := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, rs, unix.LANDLOCK_RULE_PATH_BENEATH, uintptr(unsafe.Pointer(&rule)), 0, 0, 0)
		unix.Close(fd)
		if e != 0 {
			return fmt.Errorf("landlock_add_rule %s: %w", p, e)
		}
	}
	if _, _, e := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, rs, 0, 0); e != 0 {
		return fmt.Errorf("landlock_restrict_self: %w", e)
	}
	return nil
}
