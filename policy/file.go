package policy

import (
	"fmt"
	"strings"
)

// FileError reports a problem in a policy file, with its place.
type FileError struct {
	File string
	Line int
	Err  error
}

func (e *FileError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// ParseFile parses a policy file: one rule per line in the language
// ParseLine reads, blank lines, and comments from a "#" at the start of a
// line or after white space (a path holding " #" must be quoted). name is
// used in errors and in each rule's Source ("name:line"). Every error is a
// *FileError; nothing in the file is ever skipped. Sections ("[uid 1000]"),
// which scope rules to a server's clients, are an error here: a file that
// has them is read with ParseScopedFile.
func ParseFile(name string, data []byte, res Resolver) ([]Rule, error) {
	var rules []Rule
	err := eachLine(name, data, func(n int, line string) error {
		if strings.HasPrefix(line, "[") {
			return fmt.Errorf("sections are only for a server's policy (privsep serve, policy.ParseScopedFile), not here: %q", line)
		}
		r, err := fileRule(name, n, line, res)
		if err != nil {
			return err
		}
		rules = append(rules, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rules, nil
}

// eachLine calls f with every line of a policy file that holds something
// once comments and white space are gone, numbered from 1. An error from f
// comes back as a *FileError at that line.
func eachLine(name string, data []byte, f func(n int, line string) error) error {
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(stripComment(strings.TrimSuffix(line, "\r")))
		if line == "" {
			continue
		}
		if err := f(i+1, line); err != nil {
			return &FileError{name, i + 1, err}
		}
	}
	return nil
}

// fileRule parses the rule on line n of file name and records where it
// came from.
func fileRule(name string, n int, line string, res Resolver) (Rule, error) {
	r, err := ParseLine(line, res)
	if err != nil {
		return Rule{}, err
	}
	r.Source = fmt.Sprintf("%s:%d", name, n)
	return r, nil
}

// stripComment cuts a comment off line: a '#' at the start or after white
// space, outside double quotes.
func stripComment(line string) string {
	quoted, escaped := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case escaped:
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case c == '#' && !quoted && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return line[:i]
		}
	}
	return line
}
