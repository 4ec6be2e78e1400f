package testutil

import (
	"fmt"
	"sync"
	"testing"
)

// TestLogBufferLines: concurrent writers lose no line, and Lines picks the
// lines by message.
func TestLogBufferLines(t *testing.T) {
	var b LogBuffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fmt.Fprintf(&b, "{\"@message\":\"client %d connected\"}\n{\"@message\":\"other\"}\n", i)
		}()
	}
	wg.Wait()
	if n := len(b.Lines(t, "connected")); n != 8 {
		t.Errorf("Lines(connected): %d lines, want 8; log:\n%s", n, b.String())
	}
	if n := len(b.Lines(t, "")); n != 16 {
		t.Errorf("Lines(\"\"): %d lines, want 16", n)
	}
}
