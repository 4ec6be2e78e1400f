//go:build linux

package main

// A narrower rule inside a broader tree (rwc:/app/ with r:/app/key) is
// refused wherever a policy is loaded, naming both rules: command-line
// rules, a policy file, and a section of a server's policy.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNarrowerRuleInsideTreeRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if strings.ContainsAny(dir, " \t\"#\\") {
		t.Skipf("temporary directory %q would be quoted in rule output", dir)
	}
	app, key := dir+"/app/", dir+"/app/key"
	if err := os.Mkdir(dir+"/app", 0o755); err != nil { // a tree rule's directory must exist
		t.Fatal(err)
	}
	tree, narrow := "rwc:"+app, "r:"+key
	tail := ", which grants more (w, c) through any link or rename into it: a narrower rule inside a broader tree cannot be enforced by path; split the tree or narrow it"

	// Command-line rules, in either order.
	for _, args := range [][]string{{"--allow", tree, "--allow", narrow}, {"--allow", narrow, "--allow", tree}} {
		r := privsep(t, nil, append(append([]string{"policy", "check"}, args...), key)...)
		checkCode(t, r, 2)
		checkStdout(t, r, "")
		checkStderrLines(t, r, `privsep policy check: rule "`+narrow+`" (--allow `+narrow+`) lies inside tree rule "`+tree+`" (--allow `+tree+`)`+tail+"\n")
	}
	// A policy file: at the inner rule's line, naming the tree's.
	pol := filepath.Join(dir, "app.policy")
	writeFile(t, pol, tree+"\n# the key\n"+narrow+"\n")
	r := privsep(t, nil, "policy", "check", "--policy", pol, key)
	checkCode(t, r, 2)
	checkStderrLines(t, r, "privsep policy check: "+pol+`:3: rule "`+narrow+`" lies inside tree rule "`+tree+`" (`+pol+`:1)`+tail+"\n")
	r = privsep(t, nil, "cat", "--policy", pol, key)
	checkCode(t, r, 2)
	checkStderrContains(t, r, "lies inside tree rule")
	// A file and a command-line rule together.
	r = privsep(t, nil, "cat", "--policy", pol, "--allow", dir+"/other", key)
	checkCode(t, r, 2)
	// A server's policy: the tree for every client, the narrower rule in a
	// uid section.
	srv := filepath.Join(dir, "server.policy")
	writeFile(t, srv, tree+"\n[uid 1000]\n"+narrow+"\n")
	r = privsep(t, nil, "serve", "--socket", dir+"/s.sock", "--policy", srv)
	checkCode(t, r, 2)
	checkStderrLines(t, r, "privsep serve: "+srv+`:3: rule "`+narrow+`" lies inside tree rule "`+tree+`" (`+srv+`:1)`+tail+", in the policy of clients with uid 1000\n")
	// A tree that grants no more is fine.
	writeFile(t, pol, "r:"+app+"\n"+narrow+"\n")
	r = privsep(t, nil, "policy", "check", "--policy", pol, key)
	checkCode(t, r, 0)
}
