//go:build !linux && !windows

package protocol

import "syscall"

func closeFD(fd int) { syscall.Close(fd) }
