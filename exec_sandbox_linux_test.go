package main

// privsep exec --landlock against a hostile CMD: it tries what no file
// rule stops, reaching a root service on an abstract unix socket,
// signalling a process of its own user that runs outside, and TCP.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/parent"
)

// scopeRole (testRoleEnv "scope") is a CMD that tries each escape its
// arguments name: an abstract socket name, a pid, a TCP address allowed and
// one not. It prints what each attempt got ("ok" or the error).
func scopeRole(args []string) int {
	if len(args) != 4 {
		fmt.Println("usage: NAME PID ALLOWED REFUSED")
		return 2
	}
	pid, _ := strconv.Atoi(args[1])
	result := func(err error) string {
		if err == nil {
			return "ok"
		}
		var errno syscall.Errno
		if errors.As(err, &errno) {
			return unix.ErrnoName(errno)
		}
		return err.Error()
	}
	dial := func(network, addr string) error {
		c, err := net.Dial(network, addr)
		if err == nil {
			c.Close()
		}
		return err
	}
	fmt.Printf("abstract %s\n", result(dial("unix", "@"+args[0])))
	fmt.Printf("signal %s\n", result(unix.Kill(pid, syscall.SIGTERM)))
	fmt.Printf("tcp-allowed %s\n", result(dial("tcp4", args[2])))
	fmt.Printf("tcp-refused %s\n", result(dial("tcp4", args[3])))
	return 0
}

// TestExecLandlockScopes: CMD under --landlock, as nobody, cannot reach a
// root service's abstract socket nor signal a process of nobody's started
// outside, and reaches only the TCP ports --landlock-connect names. The
// same CMD without --landlock can do all of it: the attack is real.
func TestExecLandlockScopes(t *testing.T) {
	t.Parallel()
	testutil.NeedRoot(t, "a root service and a process of nobody's")
	if abi := testutil.LandlockABI(); abi < 6 {
		t.Skipf("needs Landlock ABI 6 (network rules and scopes); the kernel has %d", abi)
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	f := newExecFiles(t)
	prog := testutil.CopySelf(t, filepath.Join(f.dir, "role.test")) // nobody may run it: see testRoleEnv

	name := fmt.Sprintf("privsep-exec-test-%d", os.Getpid())
	ln, err := net.Listen("unix", "@"+name)
	testutil.Must(t, err)
	testutil.AcceptAndClose(t, ln)
	addrs := []string{testutil.ListenLoopback(t), testutil.ListenLoopback(t)}
	_, allowedPort, _ := net.SplitHostPort(addrs[0])

	const sandboxed = "abstract EPERM\nsignal EPERM\ntcp-allowed ok\ntcp-refused EACCES\n"
	strict := sandboxed
	if !parent.TCPRestrictable() {
		strict = "" // refused, see TestExecLandlockMPTCP; best effort applies the rest
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"without --landlock", nil,
			"abstract ok\nsignal ok\ntcp-allowed ok\ntcp-refused ok\n"},
		{"with --landlock", []string{"--landlock", "--landlock-connect", allowedPort}, strict},
		// Where MPTCP sockets cannot be refused, everything else still is.
		{"with --landlock-best-effort", []string{"--landlock", "--landlock-best-effort", "--landlock-connect", allowedPort}, sandboxed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A fresh victim each time: without --landlock it is killed.
			victim := exec.Command("sleep", "120")
			victim.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
			if err := victim.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { victim.Process.Kill(); victim.Wait() }()
			args := append([]string{"exec", "--user", "nobody"}, tc.args...)
			args = append(args, "--", prog, name, strconv.Itoa(victim.Process.Pid), addrs[0], addrs[1])
			r := privsep(t, setups(inDir(f.dir), withEnv(testRoleEnv+"=scope")), args...)
			if tc.want == "" {
				checkCode(t, r, exitExecFailed)
				checkStderrContains(t, r, "IPPROTO_MPTCP")
				return
			}
			checkCode(t, r, 0)
			if r.stdout != tc.want {
				t.Errorf("CMD %s: got\n%s\nwant\n%s(stderr %q)", tc.name, r.stdout, tc.want, strings.TrimSpace(r.stderr))
			}
		})
	}
}

// landlockAnyTCPHere is what tests of exec --landlock whose subject is not
// TCP add: nothing where privsep can restrict TCP completely, else
// --landlock-any-tcp, without which --landlock is refused there (see
// TestExecLandlockMPTCP).
func landlockAnyTCPHere() []string {
	if parent.TCPRestrictable() {
		return nil
	}
	return []string{"--landlock-any-tcp"}
}

// TestExecLandlockMPTCP: where privsep cannot refuse MPTCP sockets
// (linux/386), which Landlock's TCP rules do not cover, --landlock alone
// fails before CMD runs, with a message that names the gap and the two
// ways on; each of them runs CMD. Elsewhere --landlock alone runs it.
func TestExecLandlockMPTCP(t *testing.T) {
	t.Parallel()
	if abi := testutil.LandlockABI(); abi < 4 {
		t.Skipf("needs Landlock ABI 4 (TCP rules); the kernel has %d", abi)
	}
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	run := []string{"--landlock-rw", dir, "--", "sh", "-c", "echo ran > " + marker}
	r := privsep(t, inDir(dir), append([]string{"exec", "--landlock"}, run...)...)
	if parent.TCPRestrictable() {
		checkCode(t, r, 0)
	} else {
		checkCode(t, r, exitExecFailed)
		for _, want := range []string{"IPPROTO_MPTCP", "linux/" + runtime.GOARCH, "--landlock-any-tcp", "--landlock-best-effort"} {
			checkStderrContains(t, r, want)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Errorf("CMD ran although --landlock was refused")
		}
		for _, flag := range []string{"--landlock-any-tcp", "--landlock-best-effort"} {
			r := privsep(t, inDir(dir), append([]string{"exec", "--landlock", flag}, run...)...)
			checkCode(t, r, 0)
		}
	}
	if b, err := os.ReadFile(marker); err != nil || string(b) != "ran\n" {
		t.Errorf("CMD under --landlock wrote %q, %v; want it to have run", b, err)
	}
}
