package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestMainDispatch checks what Main does before any subcommand runs: the
// usage on stdout for help, on stderr with status 2 for nothing or an
// unknown command.
func TestMainDispatch(t *testing.T) {
	for _, c := range []struct {
		args        []string
		code        int
		out, errOut string
	}{
		{[]string{"help"}, exitOK, "Usage:", ""},
		{nil, exitUsage, "", "Usage:"},
		{[]string{"frobnicate"}, exitUsage, "", `privsep: unknown command "frobnicate"`},
		{[]string{"help", "policy"}, exitOK, "privsep policy check", ""},
		{[]string{"frobnicate"}, exitUsage, "", "Run 'privsep --help' for usage.\n"},
		{[]string{"--version"}, exitOK, "privsep ", ""},
		{[]string{"version"}, exitOK, "privsep ", ""},
		{[]string{"completion", "bash"}, exitOK, "complete -o default -F _privsep privsep", ""},
		{[]string{"completion"}, exitUsage, "", "want one shell"},
		{[]string{"policy"}, exitUsage, "", "privsep policy: want the subcommand check\nRun 'privsep policy check --help' for usage.\n"},
		{[]string{"policy", "chek"}, exitUsage, "", `privsep policy: want the subcommand check, not "chek"`},
	} {
		var out, errb bytes.Buffer
		code := Main(c.args, &out, &errb)
		if code != c.code || !strings.Contains(out.String(), c.out) || !strings.Contains(errb.String(), c.errOut) {
			t.Errorf("Main(%q) = %d, stdout %q, stderr %q; want %d, %q on stdout, %q on stderr",
				c.args, code, out.String(), errb.String(), c.code, c.out, c.errOut)
		}
	}
}
