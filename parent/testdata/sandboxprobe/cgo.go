//go:build cgo

package main

// Linking a C object makes this a cgo program for real, as a program that
// imports net or os/user is where a C compiler is present: the case where
// Go alone cannot run a system call on every thread.

// int sandboxprobe_cgo(void) { return 1; }
import "C"

func cgoLinked() bool { return C.sandboxprobe_cgo() == 1 }
