package parent

import "golang.org/x/sys/unix"

// mptcpArches: arm64 and 32-bit ARM compatibility (EABI: socket is 281, no
// socketcall).
func mptcpArches() []seccompArch {
	return []seccompArch{
		{audit: unix.AUDIT_ARCH_AARCH64, socketNrs: []uint32{unix.SYS_SOCKET}, littleEnd: true},
		{audit: unix.AUDIT_ARCH_ARM, socketNrs: []uint32{281}, littleEnd: true},
	}
}
