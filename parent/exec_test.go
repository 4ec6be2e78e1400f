//go:build linux

package parent_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/privsep-go/privsep/parent"
)

// execHelperEnv makes TestExecHelper call parent.Exec, in a process of its
// own (Exec replaces it); its value names the scenario.
const execHelperEnv = "PRIVSEP_TEST_EXEC_HELPER"

// TestExecHelper is the process that parent.Exec replaces; it does nothing
// in an ordinary run.
func TestExecHelper(t *testing.T) {
	scenario := os.Getenv(execHelperEnv)
	if scenario == "" {
		t.Skip("only run by TestExec")
	}
	dir := os.Getenv("PRIVSEP_TEST_EXEC_DIR")
	a, errA := os.Open(filepath.Join(dir, "a"))
	b, errB := os.Open(filepath.Join(dir, "b"))
	// A descriptor this process holds without close-on-exec, as one
	// inherited would be: the command must not get it.
	leak, errL := syscall.Dup(0)
	if err := errors.Join(errA, errB, errL); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(99)
	}
	fdB := 4
	if scenario == "gap" {
		fdB = 6
	}
	script := fmt.Sprintf(`cat <&3; cat <&%d; echo "fds=$LISTEN_FDS names=$LISTEN_FDNAMES pid=$LISTEN_PID"; [ -e /proc/$$/fd/%d ] && echo leaked; exit 7`, fdB, leak)
	err := parent.Exec(parent.ExecConfig{
		Path:  "/bin/sh",
		Args:  []string{"sh", "-c", script},
		Env:   []string{"LISTEN_FDS=9", "PATH=/usr/bin:/bin"},
		Files: []parent.ExecFile{{File: b, FD: fdB, Name: "b:two"}, {File: a, FD: 3, Name: "a"}},
	})
	fmt.Fprintln(os.Stderr, "Exec:", err)
	os.Exit(98)
}

// TestExec runs a command through parent.Exec, as an embedding program
// would, and checks what the command got: the files at their numbers,
// sd_listen_fds(3)'s variables when the numbers are 3, 4, … (and not
// otherwise), and no descriptor the program held without close-on-exec.
func TestExec(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), []byte("first\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "b"), []byte("second\n"), 0o600)
	for _, c := range []struct{ scenario, listen string }{
		{"contiguous", "fds=2 names=a:b_two pid=PID"},
		{"gap", "fds= names= pid="},
	} {
		cmd := exec.Command("/proc/self/exe", "-test.run=^TestExecHelper$")
		cmd.Env = append(os.Environ(), execHelperEnv+"="+c.scenario, "PRIVSEP_TEST_EXEC_DIR="+dir)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 7 {
			t.Fatalf("%s: %v, stderr %q; want the command's exit status 7", c.scenario, err, errb.String())
		}
		want := "first\nsecond\n" + strings.Replace(c.listen, "PID", strconv.Itoa(cmd.Process.Pid), 1) + "\n"
		if got := out.String(); got != want {
			t.Errorf("%s: the command printed %q, want %q (stderr %q)", c.scenario, got, want, errb.String())
		}
	}
}

// TestExecRefuses checks that Exec refuses, before doing anything, what it
// cannot do as asked.
func TestExecRefuses(t *testing.T) {
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, cfg := range map[string]parent.ExecConfig{
		"relative path":      {Path: "sh", Args: []string{"sh"}},
		"no argv":            {Path: "/bin/sh"},
		"number twice":       {Path: "/bin/sh", Args: []string{"sh"}, Files: []parent.ExecFile{{File: f, FD: 3}, {File: f, FD: 3}}},
		"nil file":           {Path: "/bin/sh", Args: []string{"sh"}, Files: []parent.ExecFile{{FD: 3}}},
		"keep placed":        {Path: "/bin/sh", Args: []string{"sh"}, Files: []parent.ExecFile{{File: f, FD: 3}}, KeepFDs: []int{3}},
		"keep close-on-exec": {Path: "/bin/sh", Args: []string{"sh"}, KeepFDs: []int{int(f.Fd())}},
	} {
		if err := parent.Exec(cfg); err == nil {
			t.Errorf("%s: Exec returned nil", name)
		}
	}
}
