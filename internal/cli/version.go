package cli

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// versionText is what privsep --version prints: the module version ("(devel)"
// for a build from a checkout), then the VCS revision and its time when the
// go command recorded them, and whether the tree had uncommitted changes.
func versionText(info *debug.BuildInfo, ok bool) string {
	if !ok {
		return fmt.Sprintf("privsep (unknown: no build information)\n%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	s := "privsep " + v + "\n"
	if info.Main.Path != "" {
		s += "module " + info.Main.Path + "\n"
	}
	settings := map[string]string{}
	for _, kv := range info.Settings {
		settings[kv.Key] = kv.Value
	}
	if rev, ok := settings["vcs.revision"]; ok {
		s += "vcs.revision " + rev + "\n"
		if t, ok := settings["vcs.time"]; ok {
			s += "vcs.time " + t + "\n"
		}
		if m, ok := settings["vcs.modified"]; ok {
			s += "vcs.modified " + m + "\n"
		}
	}
	return s + fmt.Sprintf("%s %s/%s\n", info.GoVersion, runtime.GOOS, runtime.GOARCH)
}

const versionUsage = `Usage: privsep version
       privsep --version

Print privsep's module version ("(devel)" for a build from a checkout),
the VCS revision it was built from, its time and whether the tree had
uncommitted changes (vcs.modified), as the go command recorded them, and
the Go version and platform.

Options:
`

func versionCmd(args []string, stdout, stderr io.Writer) int {
	fs, parse := flagSet("version", versionUsage, stdout, stderr)
	if ok, code := parse(args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "privsep version: unexpected argument %q\nRun 'privsep version --help' for usage.\n", fs.Arg(0))
		return exitUsage
	}
	fmt.Fprint(stdout, versionText(debug.ReadBuildInfo()))
	return exitOK
}
