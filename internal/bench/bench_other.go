//go:build !linux

package bench

// ExitIfBareStart does nothing where the opener cannot run: no bare start
// is ever timed there.
func ExitIfBareStart() {}

// IsBareStart reports false: no bare start is ever timed here.
func IsBareStart() bool { return false }
