//go:build linux

package parent_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/privsep-go/privsep/parent"
	"github.com/privsep-go/privsep/policy"
)

// writePolicy writes a policy file into dir and returns its path.
func writePolicy(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadPolicyOrderAndSource(t *testing.T) {
	dir := t.TempDir()
	a := writePolicy(t, dir, "a.policy", "# first file\nr:/etc/hostname\n\nrwc:/srv/up/ mode=0640 owner=1000:1000 # uploads\n")
	b := writePolicy(t, dir, "b.policy", "ra:/var/log/app.log\r\n")
	p, err := parent.LoadPolicy([]string{a, b}, []string{"/srv/www/", "rw:/tmp/x y"})
	if err != nil {
		t.Fatalf("LoadPolicy: %v", err)
	}
	type want struct{ str, source string }
	wants := []want{
		{"r:/etc/hostname", a + ":2"},
		{"rwc:/srv/up/ mode=0640 owner=1000:1000", a + ":4"},
		{"ra:/var/log/app.log", b + ":1"},
		{"r:/srv/www/", "--allow /srv/www/"},
		// --allow takes the command-line form: the whole rest is the path.
		{`rw:"/tmp/x y"`, "--allow rw:/tmp/x y"},
	}
	rules := p.Rules()
	if len(rules) != len(wants) {
		t.Fatalf("Rules(): got %d %v, want %d", len(rules), p.Strings(), len(wants))
	}
	for i, w := range wants {
		if rules[i].String() != w.str || rules[i].Source != w.source {
			t.Errorf("rule %d: got %s from %q, want %s from %q", i, rules[i], rules[i].Source, w.str, w.source)
		}
	}
	// Decisions point back at the rule and its source.
	d, err := p.Check("/srv/up/new", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil || rules[d.Rule].Source != a+":4" || d.Mode != 0o640 || d.UID != 1000 {
		t.Errorf("Check(/srv/up/new): got %+v, %v, want allowed by %s:4 with mode 0640 owner 1000", d, err, a)
	}
}

func TestLoadPolicyNothing(t *testing.T) {
	p, err := parent.LoadPolicy(nil, nil)
	if err != nil || len(p.Rules()) != 0 {
		t.Fatalf("LoadPolicy(nil, nil): got %v, %v, want an empty policy", p, err)
	}
	if _, err := p.Check("/etc/hostname", os.O_RDONLY, 0); err == nil {
		t.Error("empty policy allowed /etc/hostname")
	}
}

func TestLoadPolicyDuplicates(t *testing.T) {
	dir := t.TempDir()
	a := writePolicy(t, dir, "a.policy", "r:/etc/hostname\nrwc:/srv/up/\n")
	b := writePolicy(t, dir, "b.policy", "\n\n# dup\nr:/srv/up/\n")

	t.Run("across files", func(t *testing.T) {
		_, err := parent.LoadPolicy([]string{a, b}, nil)
		var fe *policy.FileError
		if !errors.As(err, &fe) || fe.File != b || fe.Line != 4 {
			t.Fatalf("LoadPolicy: got %v, want a *FileError at %s:4", err, b)
		}
		if !strings.Contains(err.Error(), a+":2") {
			t.Errorf("Error(): got %q, want it to name the first rule's place %s:2", err, a)
		}
	})
	t.Run("file then --allow", func(t *testing.T) {
		_, err := parent.LoadPolicy([]string{a}, []string{"/etc/hostname"})
		var re *policy.RuleError
		if !errors.As(err, &re) {
			t.Fatalf("LoadPolicy: got %T %v, want a *RuleError", err, err)
		}
		if !strings.Contains(err.Error(), a+":1") || !strings.Contains(err.Error(), "duplicates") {
			t.Errorf("Error(): got %q, want it to say it duplicates %s:1", err, a)
		}
	})
	t.Run("--allow twice", func(t *testing.T) {
		_, err := parent.LoadPolicy(nil, []string{"/a/", "r:/a/"})
		if err == nil || !strings.Contains(err.Error(), "--allow /a/") {
			t.Errorf("LoadPolicy: got %v, want a duplicate naming --allow /a/", err)
		}
	})
	t.Run("same file twice", func(t *testing.T) {
		_, err := parent.LoadPolicy([]string{a, a}, nil)
		var fe *policy.FileError
		if !errors.As(err, &fe) || fe.File != a || fe.Line != 1 || !strings.Contains(err.Error(), a+":1") {
			t.Errorf("LoadPolicy: got %v, want a duplicate at %s:1 of %s:1", err, a, a)
		}
	})
}

// TestLoadPolicyAllowSourceIsNotAFile: an --allow rule whose path ends in
// ":<digits>" and repeats another rule must be reported as the rule it is
// (a *policy.RuleError naming "--allow ..."), not as a line of a file
// called "--allow /srv/a".
func TestLoadPolicyAllowSourceIsNotAFile(t *testing.T) {
	dir := t.TempDir()
	a := writePolicy(t, dir, "a.policy", "r:/srv/a:5\n")
	_, err := parent.LoadPolicy([]string{a}, []string{"/srv/a:5"})
	if err == nil {
		t.Fatal("LoadPolicy: got nil, want a duplicate")
	}
	var fe *policy.FileError
	if errors.As(err, &fe) {
		t.Errorf("LoadPolicy: got a *policy.FileError for file %q line %d (%v), want a *policy.RuleError: the rule came from --allow, not from a file", fe.File, fe.Line, err)
	}
}

func TestLoadPolicyFileErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.policy")
	bad := writePolicy(t, dir, "bad.policy", "r:/ok\n\nwa:/x\n")
	sect := writePolicy(t, dir, "sect.policy", "[main]\n")
	for _, tt := range []struct {
		name  string
		files []string
		rules []string
		file  string // want a *FileError for this file ("" for a *RuleError)
		line  int
		is    error
		words string
	}{
		{"missing file", []string{missing}, nil, missing, 0, fs.ErrNotExist, "no such file"},
		{"directory", []string{dir}, nil, dir, 0, nil, "not a regular file"},
		{"bad line", []string{bad}, nil, bad, 3, nil, "contradict"},
		{"section", []string{sect}, nil, sect, 1, nil, "sections"},
		{"bad --allow", nil, []string{"wa:/x"}, "", 0, nil, "contradict"},
		{"--allow with a relative path", nil, []string{"rw:x"}, "", 0, nil, "absolute"},
		{"missing file with good rules", []string{missing}, []string{"/ok"}, missing, 0, fs.ErrNotExist, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := parent.LoadPolicy(tt.files, tt.rules)
			if err == nil {
				t.Fatalf("LoadPolicy(%q, %q): got %v, want an error", tt.files, tt.rules, p.Strings())
			}
			if tt.file != "" {
				var fe *policy.FileError
				if !errors.As(err, &fe) || fe.File != tt.file || fe.Line != tt.line {
					t.Fatalf("LoadPolicy: got %T %v, want a *FileError at %s:%d", err, err, tt.file, tt.line)
				}
				if !strings.HasPrefix(err.Error(), tt.file+":") {
					t.Errorf("Error(): got %q, want it to start with the file name", err)
				}
			} else {
				var re *policy.RuleError
				if !errors.As(err, &re) {
					t.Fatalf("LoadPolicy: got %T %v, want a *RuleError", err, err)
				}
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v): got false", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.words) {
				t.Errorf("Error(): got %q, want it to mention %q", err, tt.words)
			}
		})
	}
}

// TestLoadPolicyAllowHasNoOptions: --allow takes the command-line form, in
// which everything after the colon is the path. Options written there are
// not options: "rwc:/srv/up/ mode=0600" is the exact rule for a file named
// " mode=0600" in /srv/up/, and is accepted as such.
func TestLoadPolicyAllowHasNoOptions(t *testing.T) {
	p, err := parent.LoadPolicy(nil, []string{"rwc:/srv/up/ mode=0600"})
	if err != nil {
		t.Fatalf("LoadPolicy: %v", err)
	}
	r := p.Rules()[0]
	if r.Tree || r.Path != "/srv/up/ mode=0600" || r.CreateMode != 0 {
		t.Errorf("got %#v, want the exact rule for %q without a mode", r, "/srv/up/ mode=0600")
	}
	if _, err := p.Check("/srv/up/new", os.O_WRONLY|os.O_CREATE, 0o644); err == nil {
		t.Error("the rule allowed /srv/up/new, want only its own odd path")
	}
}

func TestLoadPolicyOwnerNames(t *testing.T) {
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	root, err := user.Lookup("root")
	if err != nil {
		t.Skipf("no user root: %v", err)
	}
	rootGroup, err := user.LookupGroup("root")
	if err != nil {
		t.Skipf("no group root: %v", err)
	}
	id := func(s string) int64 {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	dir := t.TempDir()
	f := writePolicy(t, dir, "o.policy", strings.Join([]string{
		"rwc:/a/ owner=nobody",
		"rwc:/b/ owner=root:root",
		"rwc:/c/ owner=nobody:" + nobody.Gid,
		"rwc:/d/ owner=65534:0",
	}, "\n"))
	p, err := parent.LoadPolicy([]string{f}, nil)
	if err != nil {
		t.Fatalf("LoadPolicy: %v", err)
	}
	rules := p.Rules()
	for i, w := range [][2]int64{
		{id(nobody.Uid), policy.NoOwner},
		{id(root.Uid), id(rootGroup.Gid)},
		{id(nobody.Uid), id(nobody.Gid)},
		{65534, 0},
	} {
		if rules[i].UID != w[0] || rules[i].GID != w[1] {
			t.Errorf("rule %d (%s): got owner %d:%d, want %d:%d", i, rules[i], rules[i].UID, rules[i].GID, w[0], w[1])
		}
		// The opener gets numbers.
		if s := rules[i].String(); strings.Contains(s, "nobody") || strings.Contains(s, "root") {
			t.Errorf("rule %d: String %q, want numeric ids", i, s)
		}
	}

	// An unknown name is an error at its line.
	g := writePolicy(t, dir, "g.policy", "r:/ok\nrwc:/x/ owner=no-such-user-privsep-test\n")
	_, err = parent.LoadPolicy([]string{g}, nil)
	var fe *policy.FileError
	if !errors.As(err, &fe) || fe.File != g || fe.Line != 2 || !strings.Contains(err.Error(), "no-such-user-privsep-test") {
		t.Errorf("LoadPolicy: got %v, want an error at %s:2 naming the user", err, g)
	}
	h := writePolicy(t, dir, "h.policy", "rwc:/x/ owner=root:no-such-group-privsep-test\n")
	_, err = parent.LoadPolicy([]string{h}, nil)
	if !errors.As(err, &fe) || fe.File != h || fe.Line != 1 {
		t.Errorf("LoadPolicy: got %v, want an error at %s:1", err, h)
	}
}

func TestConfigRulesAndPolicy(t *testing.T) {
	pol, err := policy.Parse([]string{"/etc/hostname"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o, err := parent.Start(ctx, parent.Config{Rules: []string{"/etc/"}, Policy: pol})
	if err == nil {
		o.Close()
		t.Fatal("Start with both Rules and Policy: got an opener, want an error")
	}
	if !strings.Contains(err.Error(), "both Rules and Policy") {
		t.Errorf("Start: got %v, want it to say both Rules and Policy were set", err)
	}
}

// TestStartWithLoadedPolicy: a policy from files reaches the opener whole,
// options included.
func TestStartWithLoadedPolicy(t *testing.T) {
	dir := t.TempDir()
	up := filepath.Join(dir, "up")
	if err := os.Mkdir(up, 0o755); err != nil {
		t.Fatal(err)
	}
	f := writePolicy(t, dir, "p.policy", "rwc:"+strconv.Quote(up+"/")+" mode=0600\n")
	pol, err := parent.LoadPolicy([]string{f}, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := start(t, parent.Config{Policy: pol})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	file, err := o.Open(ctx, filepath.Join(up, "new"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	file.Close()
	st, err := os.Stat(filepath.Join(up, "new"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&^0o600 != 0 {
		t.Errorf("created with mode=0600 rule: got %v, want at most 0600", st.Mode().Perm())
	}
	_, err = o.Open(ctx, filepath.Join(dir, "p.policy"), os.O_RDONLY, 0)
	if !errors.Is(err, parent.ErrDenied) {
		t.Errorf("Open outside the policy: got %v, want ErrDenied", err)
	}
}

// TestLoadPolicyFIFO: a FIFO named as a policy file must be refused as not
// a regular file, at once. Opening it for reading first would block until
// some process opens it for writing, so "privsep policy check --policy
// FIFO" would hang.
func TestLoadPolicyFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "p.policy")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := parent.LoadPolicy([]string{fifo}, nil)
		done <- err
	}()
	select {
	case err := <-done:
		var fe *policy.FileError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("LoadPolicy(FIFO): got %v, want a *FileError saying it is not a regular file", err)
		}
	case <-time.After(3 * time.Second):
		// Unblock it: open the write end, which lets the reader's open
		// return, then close it so the reader sees end of file.
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err == nil {
			w.Close()
		}
		err = <-done
		t.Errorf("LoadPolicy(FIFO) blocked until a writer opened the FIFO (then returned %v); want it refused at once as not a regular file", err)
	}
}

// TestLoadPolicyUnknownSize: a regular file whose size stat(2) does not
// know (procfs reports 0) must be read to its end, not taken as empty:
// nothing in a policy file is skipped. /proc/self/cmdline is not a policy
// (its arguments are NUL-separated), so reading it must fail.
func TestLoadPolicyUnknownSize(t *testing.T) {
	const name = "/proc/self/cmdline"
	data, err := os.ReadFile(name)
	if err != nil || len(data) == 0 {
		t.Skipf("%s: %d bytes, %v", name, len(data), err)
	}
	st, err := os.Stat(name)
	if err != nil || !st.Mode().IsRegular() || st.Size() != 0 {
		t.Skipf("%s: want a regular file that stat says is empty", name)
	}
	p, err := parent.LoadPolicy([]string{name}, nil)
	if err == nil {
		t.Errorf("LoadPolicy(%s): got a policy of %d rules and no error; want the %d bytes it holds read and refused (it holds NUL bytes)", name, len(p.Rules()), len(data))
	}
}
