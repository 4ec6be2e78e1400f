//go:build !linux

package parent

import "github.com/privsep-go/privsep/internal/server"

// Exec fails with an error matching errors.ErrUnsupported.
func Exec(cfg ExecConfig) error { return server.Unsupported("exec") }
