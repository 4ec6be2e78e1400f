package parent

import "golang.org/x/sys/unix"

// mptcpArches: x86-64, its x32 ABI (same audit arch, numbers with bit 30
// set) and i386 compatibility (int 0x80), where socketcall hides the
// protocol.
func mptcpArches() []seccompArch {
	const x32 = 0x40000000
	return []seccompArch{
		{audit: unix.AUDIT_ARCH_X86_64, socketNrs: []uint32{unix.SYS_SOCKET, x32 | unix.SYS_SOCKET}, littleEnd: true},
		{audit: unix.AUDIT_ARCH_I386, socketNrs: []uint32{359}, opaqueNrs: []uint32{102}, littleEnd: true},
	}
}
