//go:build linux

package main

// End-to-end tests of "privsep policy check", run through the binary that
// TestMain in privsep_test.go built.

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// checkFixture is a directory holding p.policy, the policy the checks use,
// and the directories its rules name:
//
//	p.policy:1  rwc:DIR/up/
//	p.policy:2  ra:DIR/log/
//	p.policy:4  r:DIR/ro/          (line 3 is a comment)
type checkFixture struct {
	dir, up, log, ro string
}

func newCheckFixture(t *testing.T) *checkFixture {
	t.Helper()
	dir := t.TempDir()
	if strings.ContainsAny(dir, " \t\"#\\") {
		t.Skipf("temporary directory %q would be quoted in rule output", dir)
	}
	f := &checkFixture{dir: dir, up: filepath.Join(dir, "up"), log: filepath.Join(dir, "log"), ro: filepath.Join(dir, "ro")}
	for _, d := range []string{f.up, f.log, f.ro} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(dir, "p.policy"), strings.Join([]string{
		"rwc:" + strconv.Quote(f.up+"/"),
		"ra:" + f.log + "/   # append only",
		"# read only:",
		"r:" + f.ro + "/",
		"",
	}, "\n"))
	return f
}

// TestPolicyCheckAcceptance is the case the issue gives.
func TestPolicyCheckAcceptance(t *testing.T) {
	t.Parallel()
	f := newCheckFixture(t)
	newFile := filepath.Join(f.up, "new")
	r := privsep(t, inDir(f.dir), "policy", "check", "--policy", "p.policy", "--access", "w", "--create", newFile)
	checkCode(t, r, 0)
	checkStdout(t, r, "allow "+newFile+": rule rwc:"+f.up+"/ (p.policy:1)\n")
	checkStderrLines(t, r)
	// Checking opens nothing, let alone creates.
	if _, err := os.Lstat(newFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s after a check: got %v, want it not created", newFile, err)
	}

	outside := filepath.Join(t.TempDir(), "new")
	r = privsep(t, inDir(f.dir), "policy", "check", "--policy", "p.policy", "--access", "w", "--create", outside)
	checkCode(t, r, 1)
	checkStdout(t, r, "deny "+outside+": no rule matches the path\n")
	checkStderrLines(t, r)
}

func TestPolicyCheckDecisions(t *testing.T) {
	t.Parallel()
	f := newCheckFixture(t)
	upRule := "rule rwc:" + f.up + "/ (p.policy:1)"
	logRule := "rule ra:" + f.log + "/ (p.policy:2)"
	roRule := "rule r:" + f.ro + "/ (p.policy:4)"
	for _, tc := range []struct {
		name string
		args []string // after "policy check --policy p.policy"
		out  []string // stdout lines
		code int
	}{
		{"read by default", []string{f.ro + "/x"},
			[]string{"allow " + f.ro + "/x: " + roRule}, 0},
		{"the tree itself", []string{f.ro},
			[]string{"allow " + f.ro + ": " + roRule}, 0},
		{"write under r", []string{"--access", "w", f.ro + "/x"},
			[]string{"deny " + f.ro + "/x: " + roRule + ": the rule does not grant write access (w, or a with O_APPEND)"}, 1},
		{"create under r", []string{"--create", f.ro + "/x"},
			[]string{"deny " + f.ro + "/x: " + roRule + ": the rule does not grant create (c)"}, 1},
		{"append under a", []string{"--access", "a", f.log + "/app.log"},
			[]string{"allow " + f.log + "/app.log: " + logRule}, 0},
		{"write under a", []string{"--access", "w", f.log + "/app.log"},
			[]string{"deny " + f.log + "/app.log: " + logRule + ": the rule grants append only (a): writes need O_APPEND"}, 1},
		{"read-write under a", []string{"--access", "rw", f.log + "/app.log"},
			[]string{"deny " + f.log + "/app.log: " + logRule + ": the rule grants append only (a): writes need O_APPEND"}, 1},
		{"create under a", []string{"--access", "a", "--create", f.log + "/new.log"},
			[]string{"deny " + f.log + "/new.log: " + logRule + ": the rule does not grant create (c)"}, 1},
		{"read-write create under rwc", []string{"--access", "rw", "--create", f.up + "/x"},
			[]string{"allow " + f.up + "/x: " + upRule}, 0},
		{"several paths, one denied", []string{"--access", "w", f.up + "/a", f.ro + "/b", f.up + "/c"},
			[]string{
				"allow " + f.up + "/a: " + upRule,
				"deny " + f.ro + "/b: " + roRule + ": the rule does not grant write access (w, or a with O_APPEND)",
				"allow " + f.up + "/c: " + upRule,
			}, 1},
		{"prefix is not a tree", []string{f.up + "x/a"},
			[]string{"deny " + f.up + "x/a: no rule matches the path"}, 1},
		{"unclean path", []string{f.up + "/../ro/x"},
			[]string{"deny " + f.up + "/../ro/x: bad request: path is not clean (\"..\", \".\", \"//\" or a trailing slash)"}, 1},
		{"relative path, made absolute", []string{"up/x"},
			[]string{"allow up/x: " + upRule}, 0},
		{"relative path with ..", []string{"up/../ro/x"},
			[]string{"deny up/../ro/x: bad request: path is not clean (\"..\", \".\", \"//\" or a trailing slash)"}, 1},
		{"--allow beside --policy", []string{"--allow", "w:" + f.dir + "/w", "--access", "w", f.dir + "/w"},
			[]string{"allow " + f.dir + "/w: rule w:" + f.dir + "/w (--allow w:" + f.dir + "/w)"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := privsep(t, inDir(f.dir), append([]string{"policy", "check", "--policy", "p.policy"}, tc.args...)...)
			checkCode(t, r, tc.code)
			checkStdout(t, r, strings.Join(tc.out, "\n")+"\n")
			checkStderrLines(t, r)
		})
	}
}

func TestPolicyCheckUsageErrors(t *testing.T) {
	t.Parallel()
	f := newCheckFixture(t)
	writeFile(t, filepath.Join(f.dir, "bad.policy"), "# fine\nr:/ok\nwa:/x\n")
	writeFile(t, filepath.Join(f.dir, "crlf.policy"), "r:/ok\r\n\r\nrw:/a mode=0600\r\n")
	writeFile(t, filepath.Join(f.dir, "dup.policy"), "r:/etc/hostname\n")
	for _, tc := range []struct {
		name string
		args []string
		want []string // substrings of stderr
	}{
		{"bad policy line", []string{"check", "--policy", "bad.policy", "/ok"}, []string{"bad.policy:3: ", "wa:/x"}},
		{"bad line in a CRLF file", []string{"check", "--policy", "crlf.policy", "/ok"}, []string{"crlf.policy:3: ", "no c mode"}},
		{"second file bad", []string{"check", "--policy", "p.policy", "--policy", "bad.policy", "/ok"}, []string{"bad.policy:3: "}},
		{"missing file", []string{"check", "--policy", "missing.policy", "/ok"}, []string{"missing.policy", "no such file"}},
		{"directory as policy", []string{"check", "--policy", f.up, "/ok"}, []string{f.up, "not a regular file"}},
		{"duplicate across file and --allow", []string{"check", "--policy", "dup.policy", "--allow", "/etc/hostname", "/etc/hostname"}, []string{"dup.policy:1", "duplicates"}},
		{"bad --allow", []string{"check", "--allow", "wa:/x", "/x"}, []string{"contradict"}},
		{"bogus access", []string{"check", "--policy", "p.policy", "--access", "bogus", "/ok"}, []string{`--access "bogus"`}},
		{"empty access", []string{"check", "--policy", "p.policy", "--access", "", "/ok"}, []string{"--access"}},
		{"no PATH", []string{"check", "--policy", "p.policy"}, []string{"no PATH"}},
		{"no subcommand", nil, []string{"subcommand check"}},
		{"unknown subcommand", []string{"frob"}, []string{"subcommand check"}},
		{"unknown flag", []string{"check", "--frob", "/ok"}, []string{"frob"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := privsep(t, inDir(f.dir), append([]string{"policy"}, tc.args...)...)
			checkCode(t, r, 2)
			checkStdout(t, r, "")
			checkStderrContains(t, r, tc.want...)
		})
	}
}

func TestPolicyCheckHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"policy", "check", "--help"},
		{"policy", "check", "-h"},
		{"policy", "--help"},
		{"help", "policy"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			r := privsep(t, nil, args...)
			checkCode(t, r, 0)
			if !strings.Contains(r.stdout, "Usage: privsep policy check") || !strings.Contains(r.stdout, "-access") {
				t.Errorf("stdout: got %q, want the usage of policy check", r.stdout)
			}
			checkStderrLines(t, r)
		})
	}
}
