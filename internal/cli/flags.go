package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/privsep-go/privsep/parent"
	"github.com/privsep-go/privsep/policy"
)

// flagSet makes the flag set of a subcommand. Parse reports a bad flag on
// stderr itself; the usage is ours to print: on stdout when it was asked
// for, on stderr after an error.
func flagSet(name, usage string, stdout, stderr io.Writer) (*flag.FlagSet, func(args []string) (ok bool, code int)) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	printUsage := func(w io.Writer) {
		fmt.Fprint(w, usage)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
	}
	parse := func(args []string) (bool, int) {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printUsage(stdout)
				return false, exitOK
			}
			printUsage(stderr)
			return false, exitUsage
		}
		return true, 0
	}
	return fs, parse
}

// policyFlags are the flags that make a policy: --allow, --allow-listen
// and --policy.
type policyFlags struct {
	rules   []string
	listens []string
	files   []string
}

func (p *policyFlags) register(fs *flag.FlagSet) {
	fs.Func("allow", "allow `RULE`: [MODES:]PATH, PATH/ for a tree; repeatable", func(s string) error {
		if _, err := policy.ParseRule(s); err != nil {
			return err
		}
		p.rules = append(p.rules, s)
		return nil
	})
	fs.Func("allow-listen", "allow a listening socket on `NET:ADDR` (tcp::443, unix:/run/app.sock); repeatable", func(s string) error {
		if _, err := policy.ParseListen(s); err != nil {
			return err
		}
		p.listens = append(p.listens, s)
		return nil
	})
	fs.Func("policy", "read rules from policy `FILE`; repeatable", func(s string) error {
		p.files = append(p.files, s)
		return nil
	})
}

func (p *policyFlags) empty() bool {
	return len(p.rules) == 0 && len(p.listens) == 0 && len(p.files) == 0
}

// load compiles the policy; an error is a usage error, already printed as
// "FILE:LINE: what is wrong" (or the rule that is wrong).
func (p *policyFlags) load(cmd string, stderr io.Writer) (*policy.Policy, bool) {
	pol, err := parent.PolicySource{Files: p.files, Rules: p.rules, Listen: p.listens}.Policy()
	if err != nil {
		fmt.Fprintf(stderr, "privsep %s: %v\n", cmd, err)
		return nil, false
	}
	return pol, true
}
