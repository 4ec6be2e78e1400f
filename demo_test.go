//go:build linux

package main

// End-to-end tests of "privsep demo".

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/privsep-go/privsep/internal/testutil"
)

// shownStep is one numbered step of the demo's output.
type shownStep struct {
	n       string
	verdict string // "as expected", "NOT AS EXPECTED" or "skipped"
}

var (
	demoStepRE = regexp.MustCompile(`(?m)^(\d+)\. `)
	demoDirRE  = regexp.MustCompile(`the policy (\S+)/secret\.txt and`)
)

// parseDemo splits the demo's output into its numbered steps and says how
// each ended.
func parseDemo(t *testing.T, out string) []shownStep {
	t.Helper()
	idx := demoStepRE.FindAllStringSubmatchIndex(out, -1)
	var steps []shownStep
	for i, m := range idx {
		end := len(out)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		body := out[m[0]:end]
		s := shownStep{n: out[m[2]:m[3]]}
		switch {
		case strings.Contains(body, "[as expected]"):
			s.verdict = "as expected"
		case strings.Contains(body, "[NOT AS EXPECTED]"):
			s.verdict = "NOT AS EXPECTED"
		case strings.Contains(body, "-> skipped: "):
			s.verdict = "skipped"
		}
		steps = append(steps, s)
	}
	return steps
}

// checkDemoSteps checks that the output has steps 1 to 7, in order, with
// the given verdicts (by step number; every other step "as expected").
func checkDemoSteps(t *testing.T, r result, verdicts map[int]string) {
	t.Helper()
	steps := parseDemo(t, r.stdout)
	if len(steps) != 7 {
		t.Fatalf("got %d numbered steps, want 7; stdout:\n%s", len(steps), r.stdout)
	}
	for i, s := range steps {
		want := verdicts[i+1]
		if want == "" {
			want = "as expected"
		}
		if s.n != strconv.Itoa(i+1) {
			t.Errorf("step %d is numbered %s", i+1, s.n)
		}
		if s.verdict != want {
			t.Errorf("step %d: %q, want %q; stdout:\n%s", i+1, s.verdict, want, r.stdout)
		}
	}
	if got, want := strings.Count(r.stdout, "[as expected]"), 7-len(verdicts); got != want {
		t.Errorf("[as expected] appears %d times, want %d", got, want)
	}
}

// checkDemoDirGone checks that the demo's temporary directory, which its
// output names, no longer exists.
func checkDemoDirGone(t *testing.T, r result) {
	t.Helper()
	m := demoDirRE.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("stdout does not name the demo's directory:\n%s", r.stdout)
	}
	if !strings.HasPrefix(m[1], os.TempDir()+"/privsep-demo-") {
		t.Errorf("the demo's directory is %s, want it in %s", m[1], os.TempDir())
	}
	if _, err := os.Lstat(m[1]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the demo's directory %s is still there after it ended (%v)", m[1], err)
	}
}

func TestDemoAsRoot(t *testing.T) {
	t.Parallel()
	testutil.NeedRoot(t, "the demo's privilege drop")
	r := privsep(t, inDir(os.TempDir()), "demo")
	checkCode(t, r, 0)
	checkDemoSteps(t, r, nil)
	if !strings.HasSuffix(r.stdout, "\nresult: every step behaved as described\n") {
		t.Errorf("stdout does not end with the result line:\n%s", r.stdout)
	}
	checkStderrLines(t, r)
	checkDemoDirGone(t, r)
	for _, s := range []string{"opener pid", "now uid 65534", "open /etc/shadow: permission denied", "denied by policy", "opener died"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("stdout does not mention %q:\n%s", s, r.stdout)
		}
	}
}

func TestDemoAsNobody(t *testing.T) {
	t.Parallel()
	testutil.NeedRoot(t, "running the demo as nobody")
	if err := testutil.WorldTraversable(os.TempDir()); err != nil {
		t.Skip(err)
	}
	asNobody := func(c *exec.Cmd) {
		c.Dir = os.TempDir()
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	r := privsep(t, asNobody, "demo")
	checkCode(t, r, 0)
	checkDemoSteps(t, r, map[int]string{2: "skipped", 3: "skipped"})
	if !strings.Contains(r.stdout, "not running as root") {
		t.Errorf("stdout does not say it is not running as root:\n%s", r.stdout)
	}
	checkStderrLines(t, r)
	checkDemoDirGone(t, r)
}

// TestDemoFailingStep: a user that does not exist is a usage error (2),
// said before any step runs (it used to run every step and exit 1).
func TestDemoFailingStep(t *testing.T) {
	t.Parallel()
	r := privsep(t, inDir(os.TempDir()), "demo", "--user", "no-such-user-privsep")
	checkCode(t, r, 2)
	if r.stdout != "" || !strings.Contains(r.stderr, "no-such-user-privsep") {
		t.Errorf("want no steps and an error naming the user; stdout %q, stderr %q", r.stdout, r.stderr)
	}
}

func TestDemoUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"demo", "--help"}, {"help", "demo"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			checkHelp(t, privsep(t, nil, args...), "Usage: privsep demo")
		})
	}
	for _, args := range [][]string{{"demo", "extra"}, {"demo", "--frob"}, {"demo", "--user"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			r := privsep(t, nil, args...)
			checkCode(t, r, 2)
			checkStdout(t, r, "")
			if r.stderr == "" {
				t.Errorf("stderr is empty, want a usage error")
			}
		})
	}
}
