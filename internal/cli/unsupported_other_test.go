//go:build !linux

package cli

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// Every command that needs the opener says the platform cannot run it and
// exits with exitUnsupported; policy check, which is pure, still works.
func TestCommandsUnsupported(t *testing.T) {
	for _, cmd := range []string{"cat", "exec", "demo", "serve", "get", "bench"} {
		var out, errb bytes.Buffer
		code := run([]string{cmd, "/etc/hostname"}, &out, &errb)
		msg := errb.String()
		if code != exitUnsupported || !strings.Contains(msg, runtime.GOOS+"/"+runtime.GOARCH) ||
			!strings.Contains(msg, errors.ErrUnsupported.Error()) {
			t.Errorf("privsep %s: exit %d, stderr %q; want %d and the platform named", cmd, code, msg, exitUnsupported)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"policy", "check", "--allow", "/etc/hostname", "/etc/hostname"}, &out, &errb); code != exitOK {
		t.Errorf("privsep policy check: exit %d, stderr %q; want 0", code, errb.String())
	}
}
