//go:build linux

package parent_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/privsep-go/privsep/parent"
)

// An fs.FS over the opener: everything is opened by the opener, so after
// the program drops its privileges it can still serve the tree, for
// example with http.FileServer(http.FS(op.FS(www))). A symlink that leads
// out of the tree is listed but cannot be opened.
func ExampleOpener_FS() {
	dir, _ := os.MkdirTemp("", "privsep-example")
	defer os.RemoveAll(dir)
	www := filepath.Join(dir, "www")
	os.MkdirAll(filepath.Join(www, "css"), 0o755)
	os.WriteFile(filepath.Join(www, "index.html"), []byte("<h1>hello</h1>\n"), 0o644)
	os.WriteFile(filepath.Join(www, "css", "site.css"), []byte("h1 { color: teal }\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "secret"), []byte("secret\n"), 0o600)
	os.Symlink("../secret", filepath.Join(www, "leak"))

	ctx := context.Background()
	op, err := parent.Start(ctx, parent.Config{Rules: []string{www + "/"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer op.Close()
	// This is where a real program drops its privileges.

	fsys := op.FS(www)
	ents, err := fs.ReadDir(fsys, ".")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range ents {
		fmt.Println(e.Type(), e.Name())
	}
	b, err := fs.ReadFile(fsys, "index.html")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(string(b))

	_, err = fs.ReadFile(fsys, "leak")
	var pe *fs.PathError
	fmt.Println(errors.As(err, &pe), pe.Op, pe.Path, errors.Is(err, parent.ErrDenied))
	// Output:
	// d--------- css
	// ---------- index.html
	// L--------- leak
	// <h1>hello</h1>
	// true readfile leak true
}
