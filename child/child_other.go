//go:build !linux

package child

import (
	"fmt"
	"os"

	"github.com/privsep-go/privsep/internal/server"
	"github.com/privsep-go/privsep/protocol"
)

// On systems other than Linux no process is an opener (package parent
// never starts one), and Main says why it cannot run. Server mode's names
// (serve.go) build everywhere; internal/server stubs them here.

// Init does nothing: package parent never starts an opener here, so this
// process is not one.
func Init() {}

// IsOpener reports false: no opener runs on this system.
func IsOpener() bool { return false }

// Main reports that the opener cannot run here and returns
// protocol.ExitUsage.
func Main(fdArg string) int {
	fmt.Fprintln(os.Stderr, server.Unsupported("opener"))
	return protocol.ExitUsage
}
