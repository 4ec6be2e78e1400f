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
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// scopeRoleEnv makes this test binary, as CMD, try each escape its
// arguments name and print one line per attempt (see scopeRole).
const scopeRoleEnv = "PRIVSEP_EXEC_TEST_SCOPE_ROLE"

func init() {
	if os.Getenv(scopeRoleEnv) == "1" {
		os.Exit(scopeRole(os.Args[1:]))
	}
}

// scopeRole takes: an abstract socket name, a pid, a TCP address allowed
// and one not, and prints what each attempt got ("ok" or the error).
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
	needRoot(t, "a root service and a process of nobody's")
	if abi := landlockABI(); abi < 6 {
		t.Skipf("needs Landlock ABI 6 (network rules and scopes); the kernel has %d", abi)
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	f := newExecFiles(t)
	prog := copyTestBinary(t, f.dir)

	name := fmt.Sprintf("privsep-exec-test-%d", os.Getpid())
	ln, err := net.Listen("unix", "@"+name)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go acceptAll(ln)
	var addrs []string
	for range 2 {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go acceptAll(l)
		addrs = append(addrs, l.Addr().String())
	}
	_, allowedPort, _ := net.SplitHostPort(addrs[0])

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"without --landlock", nil,
			"abstract ok\nsignal ok\ntcp-allowed ok\ntcp-refused ok\n"},
		{"with --landlock", []string{"--landlock", "--landlock-connect", allowedPort},
			"abstract EPERM\nsignal EPERM\ntcp-allowed ok\ntcp-refused EACCES\n"},
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
			r := privsep(t, setups(inDir(f.dir), withEnv(scopeRoleEnv+"=1")), args...)
			checkCode(t, r, 0)
			if r.stdout != tc.want {
				t.Errorf("CMD %s: got\n%s\nwant\n%s(stderr %q)", tc.name, r.stdout, tc.want, strings.TrimSpace(r.stderr))
			}
		})
	}
}

func acceptAll(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}
