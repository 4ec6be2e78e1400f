//go:build linux

package opener

// kernelID is a policy uid or gid (int64, so that ids up to 2^32-2 fit on
// 32-bit hosts) as the int x/sys/unix takes for a uid_t. On 32-bit hosts
// ids from 2^31 become negative ints whose 32 bits are still the id the
// kernel reads; policy.NoOwner (-1) stays -1, chown's "no change".
func kernelID(id int64) int { return int(id) }
