//go:build !linux

package bench

import (
	"context"
	"errors"
	"io"
)

// ExitIfBareStart does nothing where the opener cannot run: no bare start
// is ever timed there.
func ExitIfBareStart() {}

// FinishBareStart does nothing: no bare start is ever timed here.
func FinishBareStart() {}

// IsBareStart reports false: no bare start is ever timed here.
func IsBareStart() bool { return false }

// IsServerClients reports false: no server-mode figure is taken here.
func IsServerClients() bool { return false }

// RunServerClients is never called here (IsServerClients is false).
func RunServerClients(context.Context, io.Reader, io.Writer) error {
	return errors.New("bench: server mode needs Linux")
}

// IsRawOpener reports false: the raw loop baseline runs on Linux only.
func IsRawOpener() bool { return false }

// RunRawOpener is never called here (IsRawOpener is false).
func RunRawOpener() error { return errors.New("bench: the raw loop needs Linux") }
