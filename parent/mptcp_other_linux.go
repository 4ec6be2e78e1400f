//go:build !amd64 && !arm64

package parent

// mptcpArches is nil where privsep has no filter: restricting TCP there is
// reported as not fully applied (IPPROTO_MPTCP stays open).
func mptcpArches() []seccompArch { return nil }
