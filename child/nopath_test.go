//go:build linux

package child_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// openerPackages are the directories, relative to this one, of every
// package whose code runs in the opener: this one (the process entry),
// internal/opener (the core), internal/server (server mode) and
// internal/broker (the open broker's Serve, run by the opener).
// TestOpenerPackagesListed fails on a package that imports the core and is
// missing here.
var openerPackages = []string{".", "../internal/opener", "../internal/server", "../internal/broker"}

// pathCalls are the functions, by import path, that take a path and resolve
// it from the current directory or "/" (following symlinks, most of them).
// The opener must not call them: every path it resolves is relative to a
// descriptor pinned at the handshake (the *at calls, openat2).
var pathCalls = map[string][]string{
	"golang.org/x/sys/unix": sysPathCalls,
	"syscall":               sysPathCalls,
	"os": {"Open", "OpenFile", "Create", "CreateTemp", "Remove", "RemoveAll", "Rename", "Chmod", "Chown",
		"Lchown", "Lstat", "Stat", "Mkdir", "MkdirAll", "MkdirTemp", "Symlink", "Link", "Readlink", "ReadDir",
		"ReadFile", "WriteFile", "Chdir", "Chtimes", "Truncate", "DirFS", "OpenRoot", "OpenInRoot", "StartProcess"},
	"io/ioutil":     {"ReadFile", "ReadDir", "WriteFile", "TempDir", "TempFile"},
	"path/filepath": {"Abs", "EvalSymlinks", "Glob", "Walk", "WalkDir"},
	// Unix-socket addresses are paths too.
	"net": {"Listen", "ListenUnix", "ListenUnixgram", "ListenPacket", "Dial", "DialUnix", "DialTimeout"},
}

var sysPathCalls = []string{"Open", "Creat", "Chmod", "Chown", "Lchown", "Lstat", "Stat", "Unlink", "Rename",
	"Mkdir", "Rmdir", "Symlink", "Link", "Access", "Mknod", "Mkfifo", "Readlink", "Truncate", "Chdir", "Chroot",
	"Utimes", "UtimesNano", "Utime", "Statfs", "Getxattr", "Lgetxattr", "Setxattr", "Lsetxattr", "Listxattr",
	"Llistxattr", "Removexattr", "Lremovexattr", "Mount", "Unmount", "PivotRoot", "Acct", "Swapon", "Swapoff",
	"InotifyAddWatch", "Exec", "Execve", "ForkExec", "StartProcess"}

// sockaddrUnix is a unix-socket address: a path that bind(2) and connect(2)
// resolve from the current directory or "/". Only the functions that run
// on a thread whose directory inDir pinned may build one.
const sockaddrUnix = "SockaddrUnix"

// pathAllowed are the exceptions, by file and function, each with its
// reason.
var pathAllowed = map[string]string{
	"dirs.go:PinRoot":             `the one absolute open: "/" itself, O_PATH, once, before the handshake; everything else is resolved from it`,
	"sockfile.go:chrootHere":      `chroot(".") on inDir's thread, whose working directory was just set from a pinned descriptor (fchdir) and whose filesystem state is its own (CLONE_FS) and thrown away with it`,
	"sockfile.go:privateDir.bind": `bind(2) on inDir's thread, relative to the private directory it pinned (or to the root moved there)`,
	"sockfile.go:ConnectIn":       `connect(2) on inDir's thread, relative to the private directory it pinned`,
	// The open broker's Serve, in the opener (privsep exec --broker).
	"serve_linux.go:openProc":       `the broker pins /proc once, O_PATH, when Serve starts, and checks it is procfs (PROC_SUPER_MAGIC); the per-call lookups of the program's cwd and descriptors are made beneath it`,
	"serve_linux.go:server.request": `AT_FDCWD is compared with the program's dirfd argument, the program's own "relative to my cwd"; nothing is resolved from the opener's`,
	"serve_linux.go:server.dirOf":   `AT_FDCWD is compared with the program's dirfd; its cwd is then opened beneath the pinned /proc (openat), not from the opener's`,
}

// TestNoPathCalls keeps every path the opener resolves relative to a
// pinned descriptor: it fails on any call of a path-taking function, any
// use of AT_FDCWD and any unix-socket address, outside the allowed list.
func TestNoPathCalls(t *testing.T) {
	var bad []string
	used := map[string]bool{}
	for _, pkg := range openerPackages {
		files, err := filepath.Glob(filepath.Join(pkg, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("package directory %s has no Go files", pkg)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			for _, v := range pathViolations(t, f) {
				if _, ok := pathAllowed[v.where]; ok {
					used[v.where] = true
					continue
				}
				bad = append(bad, v.String())
			}
		}
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Errorf("%s\n\tresolve the path from a pinned descriptor (an *at call, openat2), or add the function to pathAllowed with the reason", b)
	}
	for k := range pathAllowed {
		if !used[k] {
			t.Errorf("pathAllowed[%q] allows nothing any more: remove it", k)
		}
	}
}

type pathViolation struct {
	pos   token.Position
	where string // file:function
	what  string
}

func (v pathViolation) String() string { return fmt.Sprintf("%s: %s in %s", v.pos, v.what, v.where) }

// pathViolations parses one file and lists its path-based calls, its uses
// of AT_FDCWD and its unix-socket addresses.
func pathViolations(t *testing.T, file string) []pathViolation {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	imports := map[string]string{} // local name → import path
	for _, im := range f.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		name := p[strings.LastIndexByte(p, '/')+1:]
		if im.Name != nil {
			name = im.Name.Name
		}
		imports[name] = p
	}
	base := filepath.Base(file)
	var out []pathViolation
	add := func(n ast.Node, fn, what string) {
		out = append(out, pathViolation{pos: fset.Position(n.Pos()), where: base + ":" + fn, what: what})
	}
	check := func(fn string, body ast.Node) {
		ast.Inspect(body, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				x, ok := n.X.(*ast.Ident)
				if !ok {
					return true
				}
				p, isPkg := imports[x.Name]
				switch {
				case n.Sel.Name == "AT_FDCWD":
					add(n, fn, x.Name+".AT_FDCWD")
				case isPkg && n.Sel.Name == sockaddrUnix:
					add(n, fn, x.Name+"."+sockaddrUnix+" (a path bind or connect resolves)")
				case isPkg:
					for _, name := range pathCalls[p] {
						if n.Sel.Name == name {
							add(n, fn, x.Name+"."+name+" (takes a path)")
						}
					}
				}
				return false // its identifiers are seen
			case *ast.Ident:
				if n.Name == "AT_FDCWD" {
					add(n, fn, "AT_FDCWD")
				}
			}
			return true
		})
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			fn := d.Name.Name
			if d.Recv != nil && len(d.Recv.List) == 1 {
				typ := d.Recv.List[0].Type
				if s, ok := typ.(*ast.StarExpr); ok {
					typ = s.X
				}
				if id, ok := typ.(*ast.Ident); ok {
					fn = id.Name + "." + fn
				}
			}
			check(fn, d)
		case *ast.GenDecl:
			check("(package level)", d)
		}
	}
	return out
}

// TestOpenerPackagesListed: every package of the module that imports the
// opener's core holds opener code, so TestNoPathCalls must read it.
func TestOpenerPackagesListed(t *testing.T) {
	const core = "github.com/privsep-go/privsep/internal/opener"
	listed := map[string]bool{}
	for _, p := range openerPackages {
		listed[filepath.Clean(p)] = true
	}
	files, err := filepath.Glob("../*/*.go")
	if err != nil {
		t.Fatal(err)
	}
	more, err := filepath.Glob("../internal/*/*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(files, more...) {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		pf, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range pf.Imports {
			dir := filepath.Dir(f)
			if p, _ := strconv.Unquote(im.Path.Value); p == core && !listed[filepath.Clean(dir)] && dir != "../child" {
				t.Errorf("%s imports %s but %s is not in openerPackages", f, core, dir)
			}
		}
	}
}
