package broker

// int80 makes an i386 system call from this 64-bit process (see the .s
// file). Only the tests call it.
func int80(nr, a1, a2, a3 uintptr) (r uintptr)
