//go:build linux

package parent_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/privsep-go/privsep/parent"
)

// The whole life of an opener: start it with a policy, open through it,
// and check its exit status at the end. The program's main (here the test
// binary's TestMain) must call child.Init first.
func Example() {
	dir, _ := os.MkdirTemp("", "privsep-example")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "greeting"), []byte("hello\n"), 0o644)

	ctx := context.Background()
	op, err := parent.Start(ctx, parent.Config{Rules: []string{dir + "/"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	// This is where a real program drops its privileges.

	f, err := op.Open(ctx, filepath.Join(dir, "greeting"), os.O_RDONLY, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	io.Copy(os.Stdout, f)
	f.Close()

	_, err = op.Open(ctx, "/etc/passwd", os.O_RDONLY, 0)
	fmt.Println(errors.Is(err, parent.ErrDenied), err)

	fmt.Println("close:", op.Close())
	// Output:
	// hello
	// true open /etc/passwd: denied by policy
	// close: <nil>
}

func ExampleOpener_OpenBatch() {
	dir, _ := os.MkdirTemp("", "privsep-example")
	defer os.RemoveAll(dir)
	for _, name := range []string{"a", "b"} {
		os.WriteFile(filepath.Join(dir, name), []byte(name), 0o644)
	}
	ctx := context.Background()
	op, err := parent.Start(ctx, parent.Config{Rules: []string{dir + "/"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer op.Close()

	res, err := op.OpenBatch(ctx, []parent.Request{
		{Path: filepath.Join(dir, "a")},
		{Path: filepath.Join(dir, "missing")},
		{Path: filepath.Join(dir, "b")},
	})
	if err != nil { // the opener died or ctx ended
		fmt.Println(err)
		return
	}
	for _, r := range res {
		if r.Err != nil {
			fmt.Println("error:", errors.Is(r.Err, os.ErrNotExist))
			continue
		}
		b, _ := io.ReadAll(r.File)
		r.File.Close()
		fmt.Println("read:", string(b))
	}
	// Output:
	// read: a
	// error: true
	// read: b
}

// A dead opener is reported to every call, with its exit status.
func ExampleExitError() {
	op, err := parent.Start(context.Background(), parent.Config{Rules: []string{"/etc/hostname"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	p, _ := os.FindProcess(op.PID())
	p.Kill()
	<-op.Done()

	var ee *parent.ExitError
	_, err = op.Open(context.Background(), "/etc/hostname", os.O_RDONLY, 0)
	fmt.Println(errors.As(err, &ee), ee.ExitCode(), err)
	op.Close()
	// Output:
	// true -1 opener died: signal: killed
}
