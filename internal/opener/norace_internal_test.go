//go:build !race

package opener

const raceEnabled = false
