//go:build linux && (amd64 || arm64)

package broker

import (
	"os"
	"strings"
	"testing"
)

// TestBrokerWithLandlock: under Landlock, which allows the program only
// the system's directories, the file the opener serves is readable (the
// opener opened it, outside the program's domain) and a world-readable
// file the policy does not allow is not (the call continues, and
// Landlock refuses nobody's own open).
func TestBrokerWithLandlock(t *testing.T) {
	needRoot(t)
	f := newFixture(t)
	d := newTestDecider(t, "r:"+f.privKey)
	r := runBrokered(t, d, runOpts{}, "/bin/cat", f.world)
	r.wantOut(t, "without Landlock nobody reads "+f.world+" itself", "world\n")
	r = runBrokered(t, d, runOpts{landlock: true}, "/bin/cat", f.privKey)
	r.wantOut(t, "cat of the served file under Landlock", "priv key\n")
	r = runBrokered(t, d, runOpts{landlock: true}, "/bin/cat", f.world)
	r.wantDenied(t, "cat of a file outside Landlock and the policy")
}

// loaderRules are what a broker-only decider serves beyond the policy so
// that dynamically linked programs start: the loader's cache and the
// library trees, read-only, world-readable files only.
var loaderRules = []string{
	"r:/etc/ld.so.cache",
	"r:/usr/lib/ dirs=yes hardlinks=yes",
	"r:/usr/lib64/ dirs=yes hardlinks=yes",
	"r:/lib/ dirs=yes hardlinks=yes",
	"r:/lib64/ dirs=yes hardlinks=yes",
}

func newBrokerOnlyDecider(t testing.TB, rules ...string) *testDecider {
	t.Helper()
	d := newTestDecider(t, rules...)
	d.brokerOnly = true
	var present []string
	for _, r := range loaderRules {
		p := strings.Fields(r)[0][2:]
		if _, err := os.Stat(p); err == nil {
			present = append(present, r)
		}
	}
	l, err := newTestDeciderLines(present)
	if err != nil {
		t.Fatal(err)
	}
	l.worldReadable = true
	d.loader = l
	return d
}

// TestBrokerOnly: everything the policy does not allow is refused, even
// a file nobody could read itself, yet cat and Python, dynamically
// linked, still start: their loader's and interpreter's files are served
// read-only from the loader rules. No call is continued.
func TestBrokerOnly(t *testing.T) {
	needRoot(t)
	f := newFixture(t)
	d := newBrokerOnlyDecider(t, "r:"+f.privKey)
	r := runBrokered(t, d, runOpts{}, "/bin/cat", f.privKey)
	r.wantOut(t, "broker-only cat of the allowed file", "priv key\n")
	r = runBrokered(t, d, runOpts{}, "/bin/cat", f.world)
	r.wantDenied(t, "broker-only cat of a world-readable file the policy does not allow")
	script := `import sys, json
print(open(sys.argv[1]).read(), end="")
try:
    open(sys.argv[2])
except PermissionError as e:
    print("denied", e.errno)
`
	r = runBrokered(t, d, runOpts{}, python, "-c", script, f.privKey, f.world)
	r.wantOut(t, "broker-only python", "priv key\ndenied 13\n")
	if n := d.continued.Load(); n != 0 {
		t.Errorf("broker-only continued %d calls, want 0", n)
	}
}
