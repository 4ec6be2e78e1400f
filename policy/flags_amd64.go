package policy

// kernelLargefile is the kernel's O_LARGEFILE bit. Go's unix.O_LARGEFILE is
// 0 on amd64, where the kernel implies the flag, but a client may still send
// the bit; it changes nothing, so it is accepted.
const kernelLargefile = 0x8000
