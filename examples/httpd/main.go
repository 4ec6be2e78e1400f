// Command httpd serves a directory over HTTP on a privileged port, as an
// unprivileged user, using only the privsep library: the opener (root)
// binds the port and opens the files; this process drops to nobody (or
// -user) before it serves anything.
//
//	go build -o httpd ./examples/httpd
//	sudo ./httpd -dir /srv/www -addr :80
//
// It is an example of the library's shape, not a production server.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/privsep-go/privsep/child"
	"github.com/privsep-go/privsep/parent"
)

func main() {
	child.Init() // in the opener this never returns

	dir := flag.String("dir", "", "serve this `directory` (absolute)")
	addr := flag.String("addr", ":80", "listen on this TCP `address`")
	user := flag.String("user", "nobody", "drop to this `user`")
	ready := flag.Bool("print-ready", false, "print \"ready ADDR\" on stdout once serving (for tests)")
	flag.Parse()
	if *dir == "" {
		log.Fatal("httpd: -dir is required")
	}

	ctx := context.Background()
	// The opener may read the tree and bind the one address: nothing else.
	op, err := parent.Start(ctx, parent.Config{
		Rules:  []string{*dir + "/"},
		Listen: []string{"tcp:" + *addr},
	})
	if err != nil {
		log.Fatalf("httpd: %v", err)
	}
	ln, err := op.Listen(ctx, "tcp", *addr)
	if err != nil {
		log.Fatalf("httpd: %v", err)
	}

	// From here on this process has no privileges: it cannot open any
	// file by path (Landlock), bind or connect TCP ports, or become root
	// again, on any thread. The opener does the opening; the listener is
	// already bound.
	cred, err := parent.LookupCredential(*user, "")
	if err != nil {
		log.Fatalf("httpd: %v", err)
	}
	//
	// Where privsep cannot refuse MPTCP sockets (linux/386), which
	// Landlock's TCP rules do not cover, restricting TCP alone is an
	// error. The server needs no TCP at all after this point, so it still
	// restricts plain TCP, the most it can, and says what stays open; any
	// other gap is as fatal as without best effort.
	tcpGap := !parent.TCPRestrictable()
	res, err := parent.Sandbox(parent.SandboxConfig{
		Credential: &cred,
		Landlock:   &parent.LandlockConfig{BestEffort: tcpGap}, // deny everything Landlock can
	})
	if err != nil {
		log.Fatalf("httpd: %v", err)
	}
	if tcpGap {
		if got := res.Landlock.NotApplied; len(got) != 1 || got[0] != "IPPROTO_MPTCP" {
			log.Fatalf("httpd: the sandbox could not apply %q", got)
		}
		log.Printf("httpd: sandboxed, but MPTCP sockets may still bind and connect: privsep has no filter for them on this architecture")
	}

	srv := &http.Server{Handler: http.FileServer(http.FS(op.FS(*dir)))}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		srv.Shutdown(context.Background())
	}()
	if *ready {
		fmt.Printf("ready %s uid=%d\n", ln.Addr(), os.Getuid())
	}
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		log.Printf("httpd: %v", err)
	}
	if err := op.Close(); err != nil {
		log.Fatalf("httpd: %v", err)
	}
}
