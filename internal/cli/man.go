package cli

import (
	"fmt"
	"strings"
)

// The man page, privsep.1 at the module root, is generated from the help
// texts and flag definitions, and TestManPageUpToDate fails when the
// committed file differs from what they make now. To rewrite it:
//
//go:generate go test -run TestManPageUpToDate -update .

// manPage renders the main help and every subcommand's --help as roff
// (man(7) macros). It has no date, so that it changes only with the text.
func manPage(specs []cmdSpec) string {
	var b strings.Builder
	b.WriteString(".\\\" Generated from privsep's --help texts by \"go generate ./internal/cli\"; do not edit.\n")
	b.WriteString(".TH PRIVSEP 1 \"\" \"privsep\" \"User Commands\"\n")
	paras := strings.Split(strings.TrimSpace(mainUsage), "\n\n")
	name := strings.TrimSuffix(strings.TrimPrefix(paras[0], "privsep: "), ".")
	b.WriteString(".SH NAME\nprivsep \\- " + roffEscape(name) + "\n")
	var desc []string
	for _, p := range paras[1:] {
		switch {
		case strings.HasPrefix(p, "Usage:\n"):
			b.WriteString(".SH SYNOPSIS\n.nf\n")
			for _, l := range strings.Split(strings.TrimPrefix(p, "Usage:\n"), "\n") {
				b.WriteString(roffLine(strings.TrimPrefix(l, "  ")) + "\n")
			}
			b.WriteString(".fi\n")
		case strings.HasPrefix(p, "Commands:\n"):
			// The COMMANDS section below says it all, from each command.
		default:
			desc = append(desc, p)
		}
	}
	b.WriteString(".SH DESCRIPTION\n")
	for _, p := range desc {
		roffPara(&b, p)
	}
	b.WriteString(".SH COMMANDS\n")
	for _, s := range specs {
		fmt.Fprintf(&b, ".SS \"privsep %s\"\n", roffEscape(s.name))
		b.WriteString(".PP\n" + roffEscape(s.summary) + ".\n")
		usage := strings.TrimSuffix(strings.TrimSpace(s.usage), "Options:")
		for _, p := range strings.Split(strings.TrimSpace(usage), "\n\n") {
			roffPara(&b, p)
		}
		if len(s.flags) > 0 {
			b.WriteString(".PP\nOptions:\n")
		}
		for _, f := range s.flags {
			b.WriteString(".TP\n\\fB\\-\\-" + roffEscape(f.name) + "\\fR")
			if f.value != "" {
				b.WriteString(" \\fI" + roffEscape(f.value) + "\\fR")
			}
			text := f.usage
			if f.def != "" {
				text += " (default " + f.def + ")"
			}
			b.WriteString("\n" + roffLine(text) + "\n")
		}
	}
	b.WriteString(".SH SEE ALSO\nREADME.md, PROTOCOL.md and SECURITY.md in the source tree.\n")
	return b.String()
}

// roffPara writes one paragraph of help text: indented lines (examples)
// and usage lines as they are, the rest filled by the formatter.
func roffPara(b *strings.Builder, p string) {
	lines := strings.Split(p, "\n")
	if strings.HasPrefix(p, "Usage:") || strings.HasPrefix(p, "  ") {
		b.WriteString(".PP\n.nf\n")
		for _, l := range lines {
			b.WriteString(roffLine(l) + "\n")
		}
		b.WriteString(".fi\n")
		return
	}
	b.WriteString(".PP\n")
	for _, l := range lines {
		b.WriteString(roffLine(strings.TrimSpace(l)) + "\n")
	}
}

// roffLine escapes a line of text, and keeps one that starts with a dot
// or quote from being read as a request.
func roffLine(l string) string {
	l = roffEscape(l)
	if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
		l = "\\&" + l
	}
	return l
}

func roffEscape(s string) string {
	return strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(s)
}
