//go:build !linux

package broker

import "context"

// KillWhenExits returns ErrUnsupported on this platform.
func KillWhenExits(ctx context.Context, supervisorPidfd, programPidfd int) error {
	return ErrUnsupported
}
