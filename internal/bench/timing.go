//go:build linux

package bench

import (
	"context"
	"slices"
	"time"
)

// TimeLoop calls op until d has passed and it has been called at least
// minOps times, and returns the time per call and the number of calls.
// It reads the clock only a few times, in chunks of calls sized to land
// near the end of d. ctx is checked between chunks, not passed to op.
func TimeLoop(ctx context.Context, d time.Duration, minOps int, op func() error) (float64, int, error) {
	n, chunk := 0, 1
	start := time.Now()
	for {
		for range chunk {
			if err := op(); err != nil {
				return 0, n, err
			}
		}
		n += chunk
		el := time.Since(start)
		if el >= d && n >= minOps {
			return float64(el.Nanoseconds()) / float64(n), n, nil
		}
		if err := ctx.Err(); err != nil {
			return 0, n, err
		}
		per := el / time.Duration(n)
		if per <= 0 {
			per = 1
		}
		// Aim at half the time left, but look at the clock at least every
		// millisecond's worth of calls, so that a machine that slows down
		// suddenly does not stretch the loop far beyond d.
		chunk = max(min(int((d-el)/per/2), int(time.Millisecond/per)), 1)
	}
}

// TimeEach is TimeLoop for operations that take milliseconds, such as
// starting a process: it times each call and returns the median, which a
// few calls stalled for a long time by a busy machine do not move.
func TimeEach(ctx context.Context, d time.Duration, minOps int, op func() error) (float64, int, error) {
	var times []float64
	start := time.Now()
	for len(times) < minOps || time.Since(start) < d {
		if err := ctx.Err(); err != nil {
			return 0, len(times), err
		}
		t := time.Now()
		if err := op(); err != nil {
			return 0, len(times), err
		}
		times = append(times, float64(time.Since(t).Nanoseconds()))
	}
	return Median(times), len(times), nil
}

// Median returns the median of xs, or 0 for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Ratio returns a/b, or 0 when b is not positive (a figure not taken).
func Ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}
