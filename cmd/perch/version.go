package main

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// versionText is what perch version and perch --version print: the module's version, the
// commit it was built from (marked when the tree had changes) and the Go version, as the
// build recorded them.
func versionText(info *debug.BuildInfo, ok bool) string {
	if !ok {
		return "perch (no build information)"
	}
	version := info.Main.Version
	if version == "" || version == "(devel)" {
		version = "devel"
	}
	commit, modified := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	parts := []string{"perch " + version}
	switch {
	case commit == "":
		parts = append(parts, "commit unknown")
	case modified:
		parts = append(parts, "commit "+short(commit)+" with local changes")
	default:
		parts = append(parts, "commit "+short(commit))
	}
	parts = append(parts, info.GoVersion)
	return strings.Join(parts, ", ")
}

func short(commit string) string { return commit[:min(len(commit), 12)] }

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print perch's version, the commit it was built from and the Go version",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			fmt.Fprintln(a.stdout, versionText(debug.ReadBuildInfo()))
		},
	}
}
