package parent_test

import (
	"context"
	"log"
	"os"

	"github.com/privsep-go/privsep/parent"
)

// A server gives up everything once its opener runs: it becomes the user
// app, and may then read only /usr/share/app, write only /var/lib/app,
// connect only to TCP port 5432, and reach no abstract socket and no
// process outside, on every thread. The key still comes through the opener.
func ExampleSandbox() {
	ctx := context.Background()
	op, err := parent.Start(ctx, parent.Config{Rules: []string{"/etc/app/key.pem"}})
	if err != nil {
		log.Fatal(err)
	}
	cred, err := parent.LookupCredential("app", "") // reads /etc/passwd: before the sandbox
	if err != nil {
		log.Fatal(err)
	}
	if _, err := parent.Sandbox(parent.SandboxConfig{
		Credential: &cred,
		Landlock: &parent.LandlockConfig{
			ReadOnly:   []string{"/usr/share/app"},
			ReadWrite:  []string{"/var/lib/app"},
			ConnectTCP: []uint16{5432},
		},
	}); err != nil {
		log.Fatal(err) // partly sandboxed: never go on
	}
	key, err := op.Open(ctx, "/etc/app/key.pem", os.O_RDONLY, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer key.Close()
	// ... serve ...
}
