package policy_test

import (
	"strings"
	"testing"

	"github.com/privsep-go/privsep/policy"
)

// TestParseLineOptional: optional=yes marks a tree rule whose directory may
// be missing at start; it survives String (what the opener receives), is
// refused on an exact rule and a listen rule, and takes only yes or no.
func TestParseLineOptional(t *testing.T) {
	r, err := policy.ParseLine("rw:/var/cache/app/ optional=yes", nil)
	if err != nil || !r.Optional || !r.Tree {
		t.Fatalf("got %+v, %v; want an optional tree rule", r, err)
	}
	if got := r.String(); got != "rw:/var/cache/app/ optional=yes" {
		t.Errorf("String: got %q", got)
	}
	back, err := policy.ParseLine(r.String(), nil)
	if err != nil || !back.Optional {
		t.Errorf("round trip: got %+v, %v", back, err)
	}
	if r, err := policy.ParseLine("r:/srv/ optional=no", nil); err != nil || r.Optional || r.String() != "r:/srv/" {
		t.Errorf("optional=no: got %+v (%q), %v", r, r.String(), err)
	}
	for line, want := range map[string]string{
		"r:/etc/hostname optional=yes":     "applies to tree rules",
		"r:/srv/ optional=maybe":           "want yes or no",
		"r:/srv/ optional=yes optional=no": "given twice",
		"listen tcp::443 optional=yes":     "",
	} {
		_, err := policy.ParseLine(line, nil)
		if err == nil || (want != "" && !strings.Contains(err.Error(), want)) {
			t.Errorf("%q: got %v, want an error containing %q", line, err, want)
		}
	}
}
