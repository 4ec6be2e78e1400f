//go:build unix && !linux

package protocol

import "syscall"

func closeFD(fd int) { syscall.Close(fd) }
