package parent

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/privsep-go/privsep/internal/ids"
	"github.com/privsep-go/privsep/policy"
)

// maxPolicyFile bounds what PolicySource reads from one file.
const maxPolicyFile = 16 << 20

// PolicySource names where a policy comes from: policy files (see
// policy.ParseFile for the language), command-line rules ("[MODES:]PATH",
// see policy.ParseRule) and listen rules ("NET:ADDR", see
// policy.ParseListen), compiled in that order. Naming the fields keeps
// rules from being taken for files.
type PolicySource struct {
	Files  []string
	Rules  []string
	Listen []string
}

// Policy compiles the policy of an opener (Start, privsep exec). User and
// group names in owner= options are looked up with os/user. A missing or
// unreadable file, a bad line, a rule that repeats another or a narrower
// rule inside a broader tree (a *policy.NestingError, which names both) is
// an error that names the file and line (a *policy.FileError) or the rule
// (a *policy.RuleError).
func (s PolicySource) Policy() (*policy.Policy, error) {
	var all []policy.Rule
	for _, name := range s.Files {
		data, err := readPolicyFile(name)
		if err != nil {
			return nil, err
		}
		rs, err := policy.ParseFile(name, data, userResolver{})
		if err != nil {
			return nil, err
		}
		all = append(all, rs...)
	}
	cmd, err := commandLineRules(s.Rules, s.Listen)
	if err != nil {
		return nil, err
	}
	all = append(all, cmd...)
	return policy.New(all)
}

// ServerPolicy compiles a server's policy (privsep serve): the files may
// scope rules to clients with sections ("[uid alice]", "[gid staff]",
// "[all]"; see policy.ParseScopedFile); the command-line and listen rules
// apply to every client. Errors are as Policy's, and include a rule that
// repeats another in the policy of any kind of client.
func (s PolicySource) ServerPolicy() (*policy.ScopedPolicy, error) {
	var sc policy.Scoped
	all := policy.Scope{Kind: policy.ScopeAll}
	for _, name := range s.Files {
		data, err := readPolicyFile(name)
		if err != nil {
			return nil, err
		}
		fs, err := policy.ParseScopedFile(name, data, userResolver{})
		if err != nil {
			return nil, err
		}
		sc.Merge(fs)
	}
	cmd, err := commandLineRules(s.Rules, s.Listen)
	if err != nil {
		return nil, err
	}
	for _, r := range cmd {
		sc.Add(all, r)
	}
	return sc.Compile()
}

// LoadPolicy is PolicySource{Files: files, Rules: rules, Listen:
// listen}.Policy().
//
// Deprecated: use PolicySource.Policy, whose named fields cannot be swapped.
func LoadPolicy(files, rules []string, listen ...string) (*policy.Policy, error) {
	return PolicySource{Files: files, Rules: rules, Listen: listen}.Policy()
}

// LoadServerPolicy is PolicySource{Files: files, Rules: rules, Listen:
// listen}.ServerPolicy().
//
// Deprecated: use PolicySource.ServerPolicy, whose named fields cannot be
// swapped.
func LoadServerPolicy(files, rules []string, listen ...string) (*policy.ScopedPolicy, error) {
	return PolicySource{Files: files, Rules: rules, Listen: listen}.ServerPolicy()
}

// commandLineRules parses --allow rules ("[MODES:]PATH") and
// --allow-listen rules ("NET:ADDR"), in that order, recording where each
// came from.
func commandLineRules(rules, listen []string) ([]policy.Rule, error) {
	out := make([]policy.Rule, 0, len(rules)+len(listen))
	for _, s := range rules {
		r, err := policy.ParseRule(s)
		if err != nil {
			return nil, err
		}
		r.Source = "--allow " + s
		out = append(out, r)
	}
	for _, s := range listen {
		r, err := policy.ParseListen(s)
		if err != nil {
			return nil, err
		}
		r.Source = "--allow-listen " + s
		out = append(out, r)
	}
	return out, nil
}

func readPolicyFile(name string) ([]byte, error) {
	// O_NONBLOCK so that a FIFO named as a policy file is refused below
	// rather than waited on; it changes nothing for a regular file.
	f, err := os.OpenFile(name, os.O_RDONLY|oNonblock, 0)
	if err != nil {
		return nil, &policy.FileError{File: name, Err: unwrapPathError(err)}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, &policy.FileError{File: name, Err: unwrapPathError(err)}
	}
	if !st.Mode().IsRegular() {
		return nil, &policy.FileError{File: name, Err: errors.New("not a regular file")}
	}
	// Read to the end rather than trusting the size: files in /proc say 0.
	data, err := io.ReadAll(io.LimitReader(f, maxPolicyFile+1))
	if err != nil {
		return nil, &policy.FileError{File: name, Err: unwrapPathError(err)}
	}
	if len(data) > maxPolicyFile {
		return nil, &policy.FileError{File: name, Err: fmt.Errorf("more than the %d bytes a policy file may have", maxPolicyFile)}
	}
	return data, nil
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("cannot %s: %w", pe.Op, pe.Err)
	}
	return err
}

// userResolver looks the names of owner= up with internal/ids, the lookup
// LookupCredential and privsep serve use too.
type userResolver struct{}

func (userResolver) LookupUser(name string) (int64, error) {
	id, err := ids.UID(name)
	return int64(id), err
}

func (userResolver) LookupGroup(name string) (int64, error) {
	id, err := ids.GID(name)
	return int64(id), err
}
