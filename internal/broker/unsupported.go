//go:build !linux || !(amd64 || arm64)

package broker

import "context"

// InstallFilter returns ErrUnsupported on this platform.
func InstallFilter() (int, error) { return -1, ErrUnsupported }

// Serve returns ErrUnsupported on this platform.
func Serve(ctx context.Context, notifyFD int, d Decider) error { return ErrUnsupported }
