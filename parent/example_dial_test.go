//go:build linux

package parent_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"

	"github.com/privsep-go/privsep/child"
	"github.com/privsep-go/privsep/parent"
	"github.com/privsep-go/privsep/policy"
)

// Dial connects to an opener server: privsep serve, or here child.Serve
// running in this very process so that the example is self-contained. The
// policy is the server's, chosen by this process's uid and gid; the client
// sends none.
func ExampleDial() {
	dir, _ := os.MkdirTemp("", "privsep-example")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "motd"), []byte("served\n"), 0o644)

	// The server side (normally another, privileged process).
	pol, _ := policy.Parse([]string{dir + "/"})
	sockPath := filepath.Join(dir, "opener.sock")
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: sockPath, Net: "unixpacket"})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- child.Serve(ctx, ln, child.ServerConfig{Policies: policy.Unscoped(pol)}) }()
	defer func() { stop(); <-served }()

	// The client side.
	op, err := parent.Dial(context.Background(), sockPath)
	if err != nil {
		fmt.Println(err)
		return
	}
	f, err := op.Open(context.Background(), filepath.Join(dir, "motd"), os.O_RDONLY, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	io.Copy(os.Stdout, f)
	f.Close()
	fmt.Println("close:", op.Close())
	// Output:
	// served
	// close: <nil>
}

// Inherited picks up the opener that privsep exec --keep-opener started
// and left open for the program it execs. The example is compiled, not run:
// it needs to have been started that way.
func ExampleInherited() {
	op, err := parent.Inherited(hclog.Default())
	if errors.Is(err, parent.ErrNoInheritedOpener) {
		log.Fatal("run me under privsep exec --keep-opener")
	}
	if err != nil {
		log.Fatal(err)
	}
	defer op.Close()
	f, err := op.Open(context.Background(), "/etc/app/key.pem", os.O_RDONLY, 0)
	if err != nil {
		log.Fatal(err) // a *fs.PathError; errors.Is(err, parent.ErrDenied) for a refusal
	}
	defer f.Close()
}

// Listen asks the opener to create and bind a listening socket, which a
// process that has given up its privileges could not (a port below 1024,
// a socket in a directory it may not write); the listener works as one from
// net.Listen. Here a unix socket, allowed by a listen rule.
func ExampleOpener_Listen() {
	dir, _ := os.MkdirTemp("", "privsep-example")
	defer os.RemoveAll(dir)
	sockPath := filepath.Join(dir, "app.sock")

	ctx := context.Background()
	op, err := parent.Start(ctx, parent.Config{Listen: []string{"unix:" + sockPath}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer op.Close()
	ln, err := op.Listen(ctx, "unix", sockPath)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()

	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		fmt.Fprintln(c, "hello from the listener")
		c.Close()
	}()
	c, err := net.Dial("unix", sockPath)
	if err != nil {
		fmt.Println(err)
		return
	}
	line, _ := bufio.NewReader(c).ReadString('\n')
	c.Close()
	fmt.Print(line)

	_, err = op.Listen(ctx, "unix", filepath.Join(dir, "other.sock"))
	fmt.Println("no rule:", errors.Is(err, parent.ErrDenied))
	// Output:
	// hello from the listener
	// no rule: true
}
