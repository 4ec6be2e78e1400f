//go:build linux

package main

// privsep exec and its opener: without --keep-opener the opener is gone
// before CMD runs; with it, the opener is CMD's child, and a Go CMD picks
// it up with parent.Inherited.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/privsep-go/privsep/child"
	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/parent"
)

// inheritedRole (testRoleEnv "inherited") is a Go program built on
// privsep, run as the CMD of privsep exec --keep-opener: it picks up the
// opener with parent.Inherited, asks it for each path, prints what happened
// and closes it.
func inheritedRole(paths []string) int {
	child.Init() // what such a program does first; a no-op here
	fmt.Printf("env fd=%s pid=%s listen=%s\n", os.Getenv(parent.OpenerFDEnv), os.Getenv(parent.OpenerPIDEnv), os.Getenv("LISTEN_FDS"))
	op, err := parent.Inherited(nil)
	if err != nil {
		fmt.Printf("inherited: %v\n", err)
		return 3
	}
	_, fdSet := os.LookupEnv(parent.OpenerFDEnv)
	_, pidSet := os.LookupEnv(parent.OpenerPIDEnv)
	fmt.Printf("opener pid %d, env cleared %v, uid %d\n", op.PID(), !fdSet && !pidSet, os.Geteuid())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, p := range paths {
		f, err := op.Open(ctx, p, os.O_RDONLY, 0)
		if err != nil {
			fmt.Printf("open %s: denied %v: %v\n", p, errors.Is(err, parent.ErrDenied), err)
			continue
		}
		b, err := io.ReadAll(f)
		f.Close()
		fmt.Printf("read %s: %q %v\n", p, b, err)
	}
	fmt.Printf("close: %v\n", op.Close())
	return 0
}

// TestExecKeepOpener: a Go program exec'd with --keep-opener picks up the
// opener with parent.Inherited and reads, as nobody, a root-only file that
// the policy allows, and only that.
func TestExecKeepOpener(t *testing.T) {
	t.Parallel()
	testutil.NeedRoot(t, "keeping a root opener for a command that runs as nobody")
	f := newExecFiles(t)
	prog := testutil.CopySelf(t, filepath.Join(f.dir, "role.test")) // nobody may run it: see testRoleEnv
	role := withEnv(testRoleEnv + "=inherited")
	for _, tc := range []struct {
		name   string
		args   []string // between "exec" and "--"
		fd     string   // PRIVSEP_OPENER_FD
		listen string   // LISTEN_FDS
	}{
		{"alone", nil, "3", ""},
		{"after --open", []string{"--open", f.a}, "4", "1"},
		{"after a gap", []string{"--open", "6=" + f.a}, "7", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"exec", "--keep-opener", "--allow", f.secret, "--allow", f.a, "--user", "nobody"}, tc.args...)
			args = append(args, "--", prog, f.secret, f.b)
			r := privsep(t, setups(inDir(f.dir), role), args...)
			checkCode(t, r, 0)
			lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
			if len(lines) != 5 {
				t.Fatalf("stdout: got %q, want five lines (stderr %q)", r.stdout, r.stderr)
			}
			var pid int
			if _, err := fmt.Sscanf(lines[0], "env fd=%s pid=%d listen=", new(string), &pid); err != nil {
				t.Fatalf("stdout line 1: %q: %v", lines[0], err)
			}
			if want := fmt.Sprintf("env fd=%s pid=%d listen=%s", tc.fd, pid, tc.listen); lines[0] != want {
				t.Errorf("stdout line 1: got %q, want %q", lines[0], want)
			}
			for i, want := range []string{
				fmt.Sprintf("opener pid %d, env cleared true, uid 65534", pid),
				fmt.Sprintf("read %s: %q <nil>", f.secret, secretData),
				fmt.Sprintf("open %s: denied true: ", f.b),
				"close: <nil>",
			} {
				if !strings.HasPrefix(lines[i+1], want) {
					t.Errorf("stdout line %d: got %q, want it to start with %q", i+2, lines[i+1], want)
				}
			}
			if !gone(pid) {
				t.Errorf("the opener (pid %d) is still running after the command closed it", pid)
			}
		})
	}
	t.Run("with --landlock", func(t *testing.T) {
		t.Parallel()
		if testutil.LandlockABI() <= 0 {
			t.Skip("needs Landlock")
		}
		args := append([]string{"exec", "--keep-opener", "--landlock"}, landlockAnyTCPHere()...)
		args = append(args, "--allow", f.secret, "--user", "nobody", "--", prog, f.secret)
		r := privsep(t, setups(inDir(f.dir), role), args...)
		checkCode(t, r, 0)
		if want := fmt.Sprintf("read %s: %q <nil>", f.secret, secretData); !strings.Contains(r.stdout, want) {
			t.Errorf("stdout: got %q, want it to contain %q (a program under --landlock should still use its inherited opener)", r.stdout, want)
		}
	})
}

// TestExecOpenerLifetime: without --keep-opener the opener has exited (and
// been waited for) before CMD runs, and CMD is told of no opener, whatever
// privsep's environment said; with it, the opener is CMD's child and ends
// when CMD does.
func TestExecOpenerLifetime(t *testing.T) {
	t.Parallel()
	f := newExecFiles(t)
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep=%v", keep), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
			defer cancel()
			args := []string{"exec", "--open", f.a}
			if keep {
				args = append(args, "--keep-opener")
			}
			args = append(args, "--", "sh", "-c", `echo "${PRIVSEP_OPENER_FD-unset} ${PRIVSEP_OPENER_PID-unset}"; read x; exit 0`)
			cmd := exec.CommandContext(ctx, binary, args...)
			cmd.Env = append(os.Environ(), parent.OpenerFDEnv+"=7", parent.OpenerPIDEnv+"=1")
			cmd.WaitDelay = 2 * time.Second
			stdin, err := cmd.StdinPipe()
			testutil.Must(t, err)
			stdout := startReading(t, cmd)
			defer func() {
				stdin.Close()
				if err := cmd.Wait(); err != nil {
					t.Errorf("privsep exec: %v", err)
				}
			}()
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err != nil {
				t.Fatalf("reading the command's output: %v", err)
			}
			// The command is running, blocked in read; privsep is gone.
			kids := children(cmd.Process.Pid)
			if !keep {
				if line != "unset unset\n" {
					t.Errorf("PRIVSEP_OPENER_FD and _PID: got %q, want them unset", line)
				}
				if len(kids) != 0 {
					t.Errorf("the command has children %v, want none: the opener must have exited and been waited for", kids)
				}
				return
			}
			var fd, pid int
			if _, err := fmt.Sscanf(line, "%d %d", &fd, &pid); err != nil || fd != 4 {
				t.Fatalf("PRIVSEP_OPENER_FD and _PID: got %q, want 4 and a pid", line)
			}
			if len(kids) != 1 || kids[0] != pid {
				t.Errorf("the command has children %v, want exactly the opener %d", kids, pid)
			}
			stdin.Close()
			// The command ends; the opener sees end of stream and ends too.
			for deadline := time.Now().Add(5 * time.Second); !gone(pid); time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the opener (pid %d) still runs 5s after the command ended", pid)
				}
			}
		})
	}
}
