package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/privsep-go/privsep/policy"
)

const policyUsage = `Usage: privsep policy check [--allow RULE]... [--policy FILE]... [--access r|w|rw|a] [--create] PATH...

Check PATHs against a policy without opening anything: for each PATH print
"allow" or "deny", the rule that decided (with the file and line it came
from) and why. The access asked for is --access (default r: read) and, with
--create, creating the file.

Exit status: 0 if every PATH is allowed, 1 if any is denied, 2 on a usage
error (a bad rule or policy file included: FILE:LINE: what is wrong).

Options:
`

func policyCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "check" && args[0] != "--help" && args[0] != "-h" && args[0] != "-help") {
		fmt.Fprint(stderr, "privsep policy: want the subcommand check\n\n"+policyUsage)
		return exitUsage
	}
	if args[0] == "check" {
		args = args[1:]
	}
	fs, parse := flagSet("policy check", policyUsage, stdout, stderr)
	var pf policyFlags
	pf.register(fs)
	access := fs.String("access", "r", "the access to check: r, w, rw or a (append)")
	create := fs.Bool("create", false, "check creating the file too")
	if ok, code := parse(args); !ok {
		return code
	}
	flags, ok := accessFlags[*access]
	if !ok {
		fmt.Fprintf(stderr, "privsep policy check: --access %q: want r, w, rw or a\n", *access)
		return exitUsage
	}
	if *create {
		flags |= os.O_CREATE
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "privsep policy check: no PATH given (see privsep policy check --help)")
		return exitUsage
	}
	pol, ok := pf.load("policy check", stderr)
	if !ok {
		return exitUsage
	}
	rules := pol.Rules()
	status := exitOK
	for _, path := range fs.Args() {
		d, err := pol.Check(absolute(path), flags, 0o644)
		rule := ""
		if d.Rule >= 0 {
			r := rules[d.Rule]
			rule = fmt.Sprintf("rule %s", r)
			if r.Source != "" {
				rule += " (" + r.Source + ")"
			}
		}
		if err == nil {
			fmt.Fprintf(stdout, "allow %s: %s\n", path, rule)
			continue
		}
		status = exitFail
		var ref *policy.Refusal
		why := err.Error()
		if errors.As(err, &ref) {
			why = ref.Why
			if ref.Kind == policy.BadRequest {
				why = "bad request: " + why
			}
		}
		if rule != "" {
			why = rule + ": " + why
		}
		fmt.Fprintf(stdout, "deny %s: %s\n", path, why)
	}
	return status
}

var accessFlags = map[string]int{
	"r":  os.O_RDONLY,
	"w":  os.O_WRONLY,
	"rw": os.O_RDWR,
	"a":  os.O_WRONLY | os.O_APPEND,
}
