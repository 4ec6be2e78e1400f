package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"
)

// TestScanFlags: flags anywhere before "--", values after "=" or in the
// next argument, booleans without one, and exec's first operand ending
// its flags.
func TestScanFlags(t *testing.T) {
	for _, c := range []struct {
		args         []string
		endAtOperand bool
		operands     []string
		allow        []string
		json         bool
		err          string
	}{
		{args: []string{"a", "--allow", "/x", "b"}, operands: []string{"a", "b"}, allow: []string{"/x"}},
		{args: []string{"a", "--allow=/x", "-allow", "/y"}, operands: []string{"a"}, allow: []string{"/x", "/y"}},
		{args: []string{"--json", "a", "--", "--allow", "/x"}, operands: []string{"a", "--allow", "/x"}, json: true},
		{args: []string{"-", "--json=false"}, operands: []string{"-"}},
		{args: []string{"ls", "--allow", "/x"}, endAtOperand: true, operands: []string{"ls", "--allow", "/x"}},
		{args: []string{"--allow", "/x", "--", "ls"}, endAtOperand: true, operands: []string{"ls"}, allow: []string{"/x"}},
		{args: []string{"a", "--frob"}, err: "unknown flag --frob"},
		{args: []string{"a", "--allow"}, err: "flag --allow needs a value (RULE)"},
		{args: []string{"---allow", "x"}, err: "bad flag syntax: ---allow"},
		{args: []string{"--json=maybe"}, err: `invalid value "maybe" for --json`},
		{args: []string{"a", "--help", "--frob"}, err: flag.ErrHelp.Error()},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		var allow []string
		fs.Func("allow", "allow `RULE`", func(s string) error { allow = append(allow, s); return nil })
		json := fs.Bool("json", false, "json")
		operands, err := scanFlags(fs, c.args, c.endAtOperand)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("scanFlags(%q): got %v, want an error with %q", c.args, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(operands, c.operands) || !reflect.DeepEqual(allow, c.allow) || *json != c.json {
			t.Errorf("scanFlags(%q) = %q, %v; --allow %q, --json %v; want %q, --allow %q, --json %v",
				c.args, operands, err, allow, *json, c.operands, c.allow, c.json)
		}
	}
}

// TestBadFlagIsOneLine: a bad flag prints the error and one line on how
// to get help, nothing of the usage, and status 2.
func TestBadFlagIsOneLine(t *testing.T) {
	var out, errb bytes.Buffer
	fs, parse := flagSet("t", "Usage: privsep t\n", &out, &errb)
	fs.Bool("json", false, "json")
	ok, code := parse([]string{"x", "--frob"})
	want := "privsep t: unknown flag --frob\nRun 'privsep t --help' for usage.\n"
	if ok || code != exitUsage || out.Len() != 0 || errb.String() != want {
		t.Errorf("parse: %v, %d, stdout %q, stderr %q; want false, 2, nothing, %q", ok, code, out.String(), errb.String(), want)
	}
}

// TestAbsolute: the one rule for relative paths on the command line.
func TestAbsolute(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		f        func(string) string
		in, want string
	}{
		{absolute, "/etc/hostname", "/etc/hostname"},
		{absolute, "x", filepath.Join(wd, "x")},
		{absolute, "./x//y", filepath.Join(wd, "x/y")},
		{absolute, "d/", filepath.Join(wd, "d") + "/"},
		{absolute, "../x", wd + "/../x"}, // left for the policy to refuse
		{absoluteRule, "rw:x", "rw:" + filepath.Join(wd, "x")},
		{absoluteRule, "x/", filepath.Join(wd, "x") + "/"},
		{absoluteRule, "r:/x", "r:/x"},
		{absoluteRule, `"/a b"`, `"/a b"`},
		{absoluteListen, "unix:s.sock", "unix:" + filepath.Join(wd, "s.sock")},
		{absoluteListen, "unix:@name", "unix:@name"},
		{absoluteListen, "tcp::443", "tcp::443"},
	} {
		if got := c.f(c.in); got != c.want {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}

// TestVersionText: the module version, "(devel)" when there is none, and
// the VCS settings when the go command recorded them.
func TestVersionText(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/privsep-go/privsep"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}}}
	got := versionText(info, true)
	for _, want := range []string{"privsep (devel)\n", "vcs.revision abc123\n", "vcs.modified true\n", "go1.26.0 "} {
		if !strings.Contains(got, want) {
			t.Errorf("versionText: got %q, want %q in it", got, want)
		}
	}
	info.Main.Version, info.Settings = "v1.2.3", nil
	if got := versionText(info, true); !strings.HasPrefix(got, "privsep v1.2.3\n") || strings.Contains(got, "vcs") {
		t.Errorf("versionText: got %q, want v1.2.3 and no vcs lines", got)
	}
	if got := versionText(nil, false); !strings.HasPrefix(got, "privsep (unknown") {
		t.Errorf("versionText without build info: got %q", got)
	}
}
