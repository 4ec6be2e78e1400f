//go:build !linux

package parent_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/privsep-go/privsep/parent"
)

// Where the opener cannot run, every call that needs it fails with an error
// that matches errors.ErrUnsupported and names the platform, so a
// cross-platform program can tell "not here" from a failure.
func TestUnsupportedPlatform(t *testing.T) {
	ctx := context.Background()
	platform := runtime.GOOS + "/" + runtime.GOARCH
	_, errStart := parent.Start(ctx, parent.Config{Rules: []string{"/etc/hostname"}})
	_, errDial := parent.Dial(ctx, "/run/privsep.sock")
	_, errInherit := parent.Inherited(nil)
	_, errNNP := parent.SetNoNewPrivs()
	_, errLandlock := parent.Landlock(parent.LandlockConfig{BestEffort: true})
	_, errLookup := parent.LookupCredential("nobody", "")
	errDrop := parent.DropPrivileges(parent.Credential{UID: 65534, GID: 65534})
	var o parent.Opener
	_, errOpen := o.Open(ctx, "/etc/hostname", 0, 0)
	for name, err := range map[string]error{
		"Start": errStart, "Dial": errDial, "Inherited": errInherit,
		"SetNoNewPrivs": errNNP, "Landlock": errLandlock,
		"LookupCredential": errLookup, "DropPrivileges": errDrop, "Open": errOpen,
	} {
		if !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), platform) {
			t.Errorf("%s: got %v, want an error matching errors.ErrUnsupported naming %s", name, err, platform)
		}
	}
	// Policies are pure: loading one works everywhere.
	if _, err := parent.LoadPolicy(nil, []string{"r:/srv/www/"}); err != nil {
		t.Errorf("LoadPolicy: %v", err)
	}
}
