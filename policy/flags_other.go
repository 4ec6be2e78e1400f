//go:build !amd64

package policy

import "golang.org/x/sys/unix"

// kernelLargefile is the kernel's O_LARGEFILE bit on this platform.
const kernelLargefile = unix.O_LARGEFILE
