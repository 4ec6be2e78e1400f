//go:build race

package opener

// raceEnabled: the race detector is on. Its sync.Pool drops a share of
// what is put back on purpose, so a pool's reuse cannot be asserted.
const raceEnabled = true
