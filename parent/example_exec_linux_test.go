package parent_test

import (
	"context"
	"log"
	"os"

	"github.com/privsep-go/privsep/parent"
)

// A server that reads a root-only key runs unprivileged with the key at
// descriptor 3 (and LISTEN_FDS=1, LISTEN_FDNAMES=server.key): what
// "privsep exec --open 3=/etc/ssl/private/server.key --user www-data --
// server --key-fd 3" does.
func ExampleExec() {
	ctx := context.Background()
	op, err := parent.Start(ctx, parent.Config{Rules: []string{"/etc/ssl/private/server.key"}})
	if err != nil {
		log.Fatal(err)
	}
	key, err := op.Open(ctx, "/etc/ssl/private/server.key", os.O_RDONLY, 0)
	if err != nil {
		log.Fatal(err)
	}
	if err := op.Close(); err != nil {
		log.Fatal(err)
	}
	cred, err := parent.LookupCredential("www-data", "") // reads /etc/passwd: before the sandbox
	if err != nil {
		log.Fatal(err)
	}
	err = parent.Exec(parent.ExecConfig{
		Path:    "/usr/local/bin/server",
		Args:    []string{"server", "--key-fd", "3"},
		Files:   []parent.ExecFile{{File: key, FD: 3, Name: "server.key"}},
		Sandbox: &parent.SandboxConfig{Credential: &cred},
	})
	log.Fatal(err) // Exec returns only if it failed
}
