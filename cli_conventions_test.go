//go:build linux

package main

// End-to-end tests of the command-line conventions (README "Command-line
// conventions"): --version, flags anywhere before "--", one-line usage
// errors, help, completion scripts and the one rule for relative paths.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// subcommands are the words that start each subcommand.
var subcommands = [][]string{{"cat"}, {"policy", "check"}, {"exec"}, {"demo"}, {"serve"}, {"get"}, {"bench"}, {"completion"}, {"version"}}

// TestVersion: privsep --version and privsep version print the module
// version and, when the go command recorded them, the VCS settings that
// go version -m reads from the same binary.
func TestVersion(t *testing.T) {
	t.Parallel()
	a := privsep(t, nil, "--version")
	b := privsep(t, nil, "version")
	checkCode(t, a, 0)
	checkCode(t, b, 0)
	if a.stdout != b.stdout || !strings.HasPrefix(a.stdout, "privsep ") {
		t.Fatalf("--version %q and version %q: want the same, from \"privsep \"", a.stdout, b.stdout)
	}
	first, _, _ := strings.Cut(a.stdout, "\n")
	if first != "privsep (devel)" && !strings.HasPrefix(first, "privsep v") {
		t.Errorf("first line %q: want privsep (devel) or privsep vX.Y.Z", first)
	}
	goTool, err := findGo()
	if err != nil {
		t.Skip(err)
	}
	out, err := exec.Command(goTool, "version", "-m", binary).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs.") {
			k, v, _ := strings.Cut(f[1], "=")
			if k != "vcs" && !strings.Contains(a.stdout, k+" "+v+"\n") {
				t.Errorf("--version %q: want %q, as go version -m says", a.stdout, k+" "+v)
			}
		}
	}
	checkStderrLines(t, a)
}

// TestFlagsAfterOperands: flags are taken anywhere before "--", and after
// "--" everything is an operand, a file named like a flag included.
func TestFlagsAfterOperands(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := privsep(t, nil, "cat", f.t("a.txt"), "--allow", f.tree+"/", f.t("sub/c.txt"))
	checkCode(t, r, 0)
	checkStdout(t, r, f.a+f.c)

	r = privsep(t, nil, "cat", f.t("a.txt"), "--allow="+f.tree+"/")
	checkCode(t, r, 0)
	checkStdout(t, r, f.a)

	writeFile(t, f.t("--allow"), "dashes\n")
	r = privsep(t, inDir(f.tree), "cat", "--allow", "./", "--", "--allow")
	checkCode(t, r, 0)
	checkStdout(t, r, "dashes\n")

	r = privsep(t, nil, "policy", "check", f.t("a.txt"), "--allow", f.tree+"/", "--access", "w")
	checkCode(t, r, 1)
	if !strings.HasPrefix(r.stdout, "deny "+f.t("a.txt")) {
		t.Errorf("policy check with flags after the PATH: got %q, want a deny for write", r.stdout)
	}
}

// TestExecFlagsEndAtCmd: privsep exec's first operand starts CMD, so CMD's
// own flags are never privsep's, with or without "--".
func TestExecFlagsEndAtCmd(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"exec", "echo", "--allow", "x", "--frob"},
		{"exec", "--", "echo", "--allow", "x", "--frob"},
	} {
		r := privsep(t, nil, args...)
		checkCode(t, r, 0)
		checkStdout(t, r, "--allow x --frob\n")
	}
}

// TestUsageErrorIsShort: a bad flag or an unknown command prints the error
// and one line on how to get help, no usage, and exits 2 (exec: 125).
func TestUsageErrorIsShort(t *testing.T) {
	t.Parallel()
	for _, words := range subcommands {
		for _, bad := range [][]string{{"--frob"}, {"-frob=1"}} {
			args := append(append([]string{}, words...), bad...)
			r := privsep(t, nil, args...)
			want := 2
			if words[0] == "exec" {
				want = 125
			}
			checkCode(t, r, want)
			checkStdout(t, r, "")
			name := strings.Join(words, " ")
			checkStderrLines(t, r, "privsep "+name+": unknown flag --frob", "Run 'privsep "+name+" --help' for usage.")
		}
	}
	r := privsep(t, nil, "frob")
	checkCode(t, r, 2)
	checkStdout(t, r, "")
	checkStderrLines(t, r, `privsep: unknown command "frob"`, "Run 'privsep --help' for usage.")

	r = privsep(t, nil, "cat", "/etc/hostname", "--allow")
	checkCode(t, r, 2)
	checkStderrLines(t, r, "privsep cat: flag --allow needs a value (RULE)", "Run 'privsep cat --help' for usage.")
}

// TestHelpShowsDoubleDashes: every option in every --help is --name.
func TestHelpShowsDoubleDashes(t *testing.T) {
	t.Parallel()
	for _, words := range subcommands {
		r := privsep(t, nil, append(append([]string{}, words...), "--help")...)
		checkCode(t, r, 0)
		if !strings.Contains(r.stdout, "Usage: privsep "+strings.Join(words, " ")) {
			t.Errorf("%s --help: no usage line in %q", words, r.stdout)
		}
		for _, l := range strings.Split(r.stdout, "\n") {
			if strings.HasPrefix(l, "  -") && !strings.HasPrefix(l, "  --") {
				t.Errorf("%s --help: option %q shows a single dash", words, l)
			}
		}
	}
}

// TestCompletion: the scripts name every subcommand and flag; the bash one
// is valid bash and completes subcommands, flags after operands, and
// nothing of privsep's after exec's CMD.
func TestCompletion(t *testing.T) {
	t.Parallel()
	scripts := map[string]string{}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		r := privsep(t, nil, "completion", sh)
		checkCode(t, r, 0)
		checkStderrLines(t, r)
		scripts[sh] = r.stdout
		for _, want := range []string{"cat", "check", "exec", "serve", "completion", "version", "allow", "landlock-ro", "socket-mode", "access"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("completion %s: no %q in the script", sh, want)
			}
		}
		if path, err := exec.LookPath(sh); err == nil {
			file := filepath.Join(t.TempDir(), "privsep."+sh)
			writeFile(t, file, r.stdout)
			if out, err := exec.Command(path, "-n", file).CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v\n%s", sh, err, out)
			}
		}
	}
	r := privsep(t, nil, "completion", "tcsh")
	checkCode(t, r, 2)
	checkStderrLines(t, r, `privsep completion: unknown shell "tcsh"`, "Run 'privsep completion --help' for usage.")

	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash to run the bash completion in")
	}
	file := filepath.Join(t.TempDir(), "privsep.bash")
	writeFile(t, file, scripts["bash"])
	for _, c := range []struct {
		words string // the last one is being completed
		want  string // COMPREPLY, joined by spaces
	}{
		{"privsep ca", "cat"},
		{"privsep policy ch", "check"},
		{"privsep cat /etc/hostname --allow-", "--allow-listen"},
		{"privsep policy check /x --acc", "--access"},
		{"privsep serve --socket-m", "--socket-mode"},
		{"privsep completion f", "fish"},
		{"privsep exec --allow /x ls --al", ""},
		{"privsep exec -- ls --al", ""},
		{"privsep cat --allow --al", ""}, // a value: file names
	} {
		script := `source "$1"; read -ra COMP_WORDS <<<"$2"; [[ $2 == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _privsep; echo "${COMPREPLY[*]}"`
		out, err := exec.Command(bash, "-c", script, "bash", file, c.words).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != c.want {
			t.Errorf("completing %q: got %q, %v; want %q", c.words, out, err, c.want)
		}
	}
}

// TestRelativePaths: every subcommand makes relative operands and rule
// paths absolute against the current directory, and refuses ".." in them
// as it does in absolute ones.
func TestRelativePaths(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	in := inDir(f.tree)

	r := privsep(t, in, "cat", "a.txt", "sub/c.txt")
	checkCode(t, r, 0)
	checkStdout(t, r, f.a+f.c)

	r = privsep(t, in, "cat", "--allow", "sub/", "sub/c.txt")
	checkCode(t, r, 0)
	checkStdout(t, r, f.c)

	r = privsep(t, in, "policy", "check", "--allow", "r:./", "a.txt", "sub/c.txt")
	checkCode(t, r, 0)
	rule := "rule r:" + f.tree + "/ (--allow r:" + f.tree + "/)"
	checkStdout(t, r, "allow a.txt: "+rule+"\nallow sub/c.txt: "+rule+"\n")

	r = privsep(t, in, "policy", "check", "--allow", "./", "../outside/secret")
	checkCode(t, r, 1)
	if !strings.HasPrefix(r.stdout, "deny ../outside/secret: ") {
		t.Errorf("policy check ../outside/secret: got %q, want a deny", r.stdout)
	}

	r = privsep(t, in, "exec", "--open", "3=a.txt", "--", "sh", "-c", "cat <&3")
	checkCode(t, r, 0)
	checkStdout(t, r, f.a)

	r = privsep(t, in, "cat", "--allow", "../outside/", "../outside/secret")
	checkCode(t, r, 2)
	checkNotPrinted(t, r, secret)
}

// TestManPageShipped: privsep.1 is at the module root and covers every
// subcommand (TestManPageUpToDate in internal/cli checks it is current).
func TestManPageShipped(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("privsep.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, words := range subcommands {
		if !strings.Contains(string(data), ".SS \"privsep "+strings.Join(words, " ")+"\"") {
			t.Errorf("privsep.1: no section for privsep %s", strings.Join(words, " "))
		}
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want []string // substrings of stderr
	}{
		{name: "no command", args: nil, want: []string{"Usage:", "privsep cat"}},
		{name: "unknown command", args: []string{"frob"}, want: []string{`unknown command "frob"`}},
		{name: "help for an unknown command", args: []string{"help", "frob"}, want: []string{`unknown command "frob"`}},
		{name: "cat without FILE", args: []string{"cat"}, want: []string{"no FILE given"}},
		{name: "cat with rules but no FILE", args: []string{"cat", "--allow", "/etc/"}, want: []string{"no FILE given"}},
		{name: "relative rule with ..", args: []string{"cat", "--allow", "../etc/hostname", "/etc/hostname"}, want: []string{`../etc/hostname"`, "not clean"}},
		{name: "unclean rule", args: []string{"cat", "--allow", "/a/../b", "/b"}, want: []string{`"/a/../b"`, "not clean"}},
		{name: "unclean tree rule", args: []string{"cat", "--allow", "/a//b/", "/a/b/c"}, want: []string{"not clean"}},
		{name: "empty rule", args: []string{"cat", "--allow", "", "/b"}, want: []string{"-allow"}},
		{name: "unknown mode", args: []string{"cat", "--allow", "x:/tmp/", "/tmp/x"}, want: []string{"mode"}},
		{name: "unknown log level", args: []string{"cat", "--log-level", "loud", "/etc/hostname"}, want: []string{`unknown log level "loud"`}},
		{name: "unknown flag", args: []string{"cat", "--frob", "/etc/hostname"}, want: []string{"frob"}},
		{name: "missing flag value", args: []string{"cat", "--allow"}, want: []string{"allow"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := privsep(t, nil, tc.args...)
			checkCode(t, r, 2)
			checkStdout(t, r, "")
			checkStderrContains(t, r, tc.want...)
		})
	}
}

// TestDuplicateRule: the same rule twice on the command line is the command
// line's fault, so a usage error, reported once with one "privsep:" prefix.
func TestDuplicateRule(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := privsep(t, nil, "cat", "--allow", f.t("a.txt"), "--allow", "r:"+f.t("a.txt"), f.t("a.txt"))
	checkStdout(t, r, "")
	checkStderrContains(t, r, "duplicates")
	if strings.Contains(r.stderr, "privsep: privsep:") {
		t.Errorf("stderr: got %q, want a single \"privsep:\" prefix", r.stderr)
	}
	checkCode(t, r, 2)
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string // a line of the usage that must be on stdout
	}{
		{[]string{"--help"}, "privsep cat [--allow RULE]"},
		{[]string{"-h"}, "privsep cat [--allow RULE]"},
		{[]string{"help"}, "privsep cat [--allow RULE]"},
		{[]string{"help", "cat"}, "Usage: privsep cat [--allow RULE]"},
		{[]string{"cat", "--help"}, "Usage: privsep cat [--allow RULE]"},
		{[]string{"cat", "-h"}, "Usage: privsep cat [--allow RULE]"},
		{[]string{"cat", "--allow", "/etc/", "--help", "/etc/hostname"}, "Usage: privsep cat [--allow RULE]"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			r := privsep(t, nil, tc.args...)
			checkCode(t, r, 0)
			if !strings.Contains(r.stdout, tc.want) || !strings.Contains(r.stdout, "--allow") {
				t.Errorf("stdout: got %q, want the usage, with %q", r.stdout, tc.want)
			}
			if n := strings.Count(r.stdout, "Usage:"); n != 1 {
				t.Errorf("stdout: got the usage %d times, want once", n)
			}
			checkStderrLines(t, r)
		})
	}
}
