package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/privsep-go/privsep/parent"
	"github.com/privsep-go/privsep/policy"
)

// flagSet makes the flag set of a subcommand and its parser. The parser
// takes flags anywhere before "--", as GNU tools do (except for exec, see
// flagsEndAtOperand), so that "privsep cat FILE --allow DIR/" works; after
// "--" everything is an operand. A bad flag is reported on stderr in one
// line, with one more saying how to get help; --help prints the usage on
// stdout.
//
// The standard flag package does the values (Set, defaults, usage text);
// only the scan of the command line is ours, because flag.Parse stops at
// the first operand and github.com/spf13/pflag, which does not, would be a
// fourth dependency for thirty lines of code.
func flagSet(name, usage string, stdout, stderr io.Writer) (*flag.FlagSet, func(args []string) (ok bool, code int)) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	parse := func(args []string) (bool, int) {
		operands, err := scanFlags(fs, args, flagsEndAtOperand(name))
		if errors.Is(err, flag.ErrHelp) {
			if h, ok := stdout.(*helpRecorder); ok {
				h.fs, h.usage = fs, usage
			}
			fmt.Fprint(stdout, usage)
			printDefaults(stdout, fs)
			return false, exitOK
		}
		if err != nil {
			fmt.Fprintf(stderr, "privsep %s: %v\n", name, err)
			fmt.Fprintf(stderr, "Run 'privsep %s --help' for usage.\n", name)
			return false, exitUsage
		}
		// Only operands are left: Parse after "--" takes none as a flag,
		// and makes them fs.Args().
		if err := fs.Parse(append([]string{"--"}, operands...)); err != nil {
			fmt.Fprintf(stderr, "privsep %s: %v\n", name, err)
			return false, exitUsage
		}
		return true, 0
	}
	return fs, parse
}

// flagsEndAtOperand says whether the command's first operand ends its
// flags: for exec, whose operands are a command line of their own, as for
// env(1) and sudo(8), so that "privsep exec ls -l" never takes -l.
func flagsEndAtOperand(name string) bool { return name == "exec" }

// scanFlags sets the flags in args on fs and returns the operands. A flag
// is --name or -name (there are no one-letter flags to group), with its
// value after "=" or, unless it is a boolean, in the next argument. "-" is
// an operand (standard input, by custom).
func scanFlags(fs *flag.FlagSet, args []string, endAtOperand bool) ([]string, error) {
	var operands []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(operands, args[i+1:]...), nil
		}
		if len(a) < 2 || a[0] != '-' {
			if endAtOperand {
				return append(operands, args[i:]...), nil
			}
			operands = append(operands, a)
			continue
		}
		name := strings.TrimPrefix(a[1:], "-")
		value, hasValue := "", false
		if j := strings.IndexByte(name, '='); j >= 0 {
			name, value, hasValue = name[:j], name[j+1:], true
		}
		f := fs.Lookup(name)
		if f == nil {
			if name == "help" || name == "h" {
				return nil, flag.ErrHelp
			}
			if name == "" || strings.HasPrefix(name, "-") {
				return nil, fmt.Errorf("bad flag syntax: %s", a)
			}
			return nil, fmt.Errorf("unknown flag --%s", name)
		}
		if !hasValue {
			if isBool(f) {
				value = "true"
			} else if i+1 < len(args) {
				i++
				value = args[i]
			} else {
				return nil, fmt.Errorf("flag --%s needs a value (%s)", name, valueName(f))
			}
		}
		if err := fs.Set(name, value); err != nil {
			return nil, fmt.Errorf("invalid value %q for --%s: %v", value, name, err)
		}
	}
	return operands, nil
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// valueName is the placeholder of a flag's value in the help: the
// back-quoted word of its usage, or "value".
func valueName(f *flag.Flag) string {
	name, _ := flag.UnquoteUsage(f)
	if name == "" {
		return "value"
	}
	return name
}

// printDefaults prints the options as the usage lines write them:
// --name VALUE, the usage, and the default when it is not the zero value.
func printDefaults(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		line := "  --" + f.Name
		name, usage := flag.UnquoteUsage(f)
		if isBool(f) {
			name = ""
		}
		if name != "" {
			line += " " + name
		}
		if len(line) <= 6 {
			line += "\t"
		} else {
			line += "\n    \t"
		}
		line += strings.ReplaceAll(usage, "\n", "\n    \t")
		if d := defaultShown(f); d != "" {
			line += " (default " + d + ")"
		}
		fmt.Fprintln(w, line)
	})
}

// defaultShown is the default worth printing: none for the zero values.
func defaultShown(f *flag.Flag) string {
	switch f.DefValue {
	case "", "false", "0", "0s", "[]":
		return ""
	}
	if g, ok := f.Value.(flag.Getter); ok {
		if _, isString := g.Get().(string); isString {
			return fmt.Sprintf("%q", f.DefValue)
		}
	}
	return f.DefValue
}

// helpRecorder is a writer for --help output that also keeps the flag set
// it describes, for the generators of completion scripts and the man page.
type helpRecorder struct {
	strings.Builder
	fs    *flag.FlagSet
	usage string // the text before the options
}

// absolute makes a relative command-line path absolute against the working
// directory: the one rule for every path on privsep's command line
// (operands, rules, --open, --socket, Landlock paths), applied before
// anything else reads it, as the library and the wire take absolute paths
// only. It cleans away "." and doubled slashes, which do not change what a
// path names, but leaves a ".." in place: that is refused rather than
// silently resolved, as the opener refuses it. Paths inside policy files
// are not made absolute: a file's meaning must not depend on where privsep
// is started.
func absolute(p string) string {
	if p == "" || strings.HasPrefix(p, "/") {
		return p
	}
	wd, err := os.Getwd()
	if err != nil {
		return p // refused later as not absolute
	}
	tree := strings.HasSuffix(p, "/")
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return strings.TrimSuffix(wd, "/") + "/" + p
		}
	}
	abs := filepath.Join(wd, p)
	if tree && !strings.HasSuffix(abs, "/") {
		abs += "/"
	}
	return abs
}

// absoluteRule makes the PATH of a [MODES:]PATH rule absolute, as
// absolute does. A quoted path and one with options are left to the
// policy parser.
func absoluteRule(s string) string {
	if s == "" || strings.HasPrefix(s, "/") || strings.HasPrefix(s, `"`) {
		return s
	}
	if i := strings.IndexByte(s, ':'); i >= 0 && isModes(s[:i]) {
		if rest := s[i+1:]; rest != "" && !strings.HasPrefix(rest, `"`) {
			return s[:i+1] + absolute(rest)
		}
		return s
	}
	return absolute(s)
}

// isModes says whether s could be the MODES of a rule: letters only.
func isModes(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// absoluteListen makes the path of a unix:PATH listen rule absolute (an
// abstract @name stays as it is).
func absoluteListen(s string) string {
	network, addr, ok := strings.Cut(s, ":")
	if !ok || !strings.HasPrefix(network, "unix") || addr == "" || strings.HasPrefix(addr, "@") {
		return s
	}
	return network + ":" + absolute(addr)
}

// repeated makes the function of a repeatable flag: each value is parsed,
// and appended to list unless parse refuses it.
func repeated[T any](list *[]T, parse func(string) (T, error)) func(string) error {
	return func(s string) error {
		v, err := parse(s)
		if err != nil {
			return err
		}
		*list = append(*list, v)
		return nil
	}
}

// policyFlags are the flags that make a policy: --allow, --allow-listen
// and --policy.
type policyFlags struct {
	rules   []string
	listens []string
	files   []string
}

func (p *policyFlags) register(fs *flag.FlagSet) {
	fs.Func("allow", "allow `RULE`: [MODES:]PATH, PATH/ for a tree; repeatable", repeated(&p.rules, func(s string) (string, error) {
		s = absoluteRule(s)
		_, err := policy.ParseRule(s)
		return s, err
	}))
	fs.Func("allow-listen", "allow a listening socket on `NET:ADDR` (tcp::443, unix:/run/app.sock); repeatable", repeated(&p.listens, func(s string) (string, error) {
		s = absoluteListen(s)
		_, err := policy.ParseListen(s)
		return s, err
	}))
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
