//go:build linux && (amd64 || arm64)

package broker

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/privsep-go/privsep/internal/testutil"
)

// BenchmarkBrokeredOpen measures, in one run, the cost of opening and
// closing one allowed root-only file two ways (the root package's
// BenchmarkBrokeredOpen adds the Open request, through the real binary):
//
//	direct    the loop program as root, no filter: open(2) alone
//	brokered  the same program as nobody under the broker: every open
//	          goes to the supervisor (this process), which decides with
//	          the policy, opens beneath the pinned rule directory and
//	          places the descriptor in the program
//
// The loop program times its own loop, so ns/open leaves out its start;
// ns/op of direct and brokered includes it and is not the figure.
func BenchmarkBrokeredOpen(b *testing.B) {
	needRoot(b)
	f := newFixture(b)
	bin := testutil.CopySelf(b, filepath.Join(f.base, "broker.test"))
	loop := func(b *testing.B, o runOpts) {
		d := newTestDecider(b, "r:"+f.privKey)
		o.execRole = "loop"
		r := runBrokered(b, d, o, bin, f.privKey, strconv.Itoa(b.N))
		if r.code != 0 {
			b.Fatalf("loop: exit %d, stderr %q", r.code, r.stderr)
		}
		ns, err := strconv.ParseFloat(strings.TrimSpace(r.stdout), 64)
		if err != nil {
			b.Fatalf("loop printed %q", r.stdout)
		}
		b.ReportMetric(ns/float64(b.N), "ns/open")
		if !o.noFilter && d.served.Load() < int64(b.N) {
			b.Fatalf("served %d of %d opens", d.served.Load(), b.N)
		}
	}
	b.Run("direct", func(b *testing.B) { loop(b, runOpts{noFilter: true}) })
	b.Run("brokered", func(b *testing.B) { loop(b, runOpts{}) })
}
