//go:build !linux

package parent

// Exec fails with an error matching errors.ErrUnsupported.
func Exec(cfg ExecConfig) error { return errUnsupported("exec") }
