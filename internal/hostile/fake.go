//go:build linux

package hostile

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// FakeChildren is the fake opener (./fakechild) built once, from which Path
// makes one executable per scenario.
type FakeChildren struct {
	dir string
	bin string
}

// FakeChildEnv names the environment variable through which a test hands the
// path of a built fake child to a subprocess of itself (see FakeChildAt).
const FakeChildEnv = "PRIVSEP_TEST_FAKECHILD"

// BuildFakeChild builds internal/hostile/fakechild with the go command (found
// in PATH, as go test itself is) into a temporary directory of t. It takes a second or two the first time and is
// cached by the go command afterwards.
func BuildFakeChild(t testing.TB) *FakeChildren {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "fakechild")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/privsep-go/privsep/internal/hostile/fakechild")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the fake child: %v\n%s", err, out)
	}
	return &FakeChildren{dir: dir, bin: bin}
}

// Binary returns the path of the built program, for handing to a
// subprocess (see FakeChildEnv and FakeChildAt).
func (f *FakeChildren) Binary() string { return f.bin }

// FakeChildAt wraps a fake child that another process built.
func FakeChildAt(bin string) *FakeChildren {
	return &FakeChildren{dir: filepath.Dir(bin), bin: bin}
}

// Path returns an executable that misbehaves as scenario says (see the
// fakechild command's documentation): a hard link to the program named
// fake-SCENARIO, which is how the program, started with the opener's fixed
// argv and environment, knows what to do.
func (f *FakeChildren) Path(t testing.TB, scenario string) string {
	t.Helper()
	p := filepath.Join(f.dir, "fake-"+scenario)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if err := os.Link(f.bin, p); err != nil && !os.IsExist(err) {
		t.Fatalf("linking the fake child as %s: %v", p, err)
	}
	return p
}
