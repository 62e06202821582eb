package command

import (
	"fmt"
	"sort"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// aliasAnnotation marks a hidden flag as the old name of another.
const aliasAnnotation = "weir-deprecated-alias-of"

// deprecatedAlias keeps old as a hidden name of the flag current, setting
// the same value, so scripts written for the old name keep working; using
// it prints a warning naming the new one (warnDeprecated). pflag's own
// MarkDeprecated prints through cobra's output writer, which is stdout
// here, where a script reads a job id.
func deprecatedAlias(c *cobra.Command, old, current string) {
	f := c.Flags().Lookup(current)
	if f == nil {
		panic("deprecatedAlias: no flag --" + current)
	}
	c.Flags().AddFlag(&pflag.Flag{
		Name: old, Usage: "deprecated: use --" + current, Value: f.Value,
		DefValue: f.DefValue, NoOptDefVal: f.NoOptDefVal, Hidden: true,
		Annotations: map[string][]string{aliasAnnotation: {current}},
	})
}

// warnDeprecated writes a warning to stderr for each old flag name used.
func warnDeprecated(cmd *cobra.Command) {
	var lines []string
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if to, ok := f.Annotations[aliasAnnotation]; ok {
			lines = append(lines, fmt.Sprintf("warning: --%s is deprecated and will go; use --%s", f.Name, to[0]))
		}
	})
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Fprintln(cmd.ErrOrStderr(), l)
	}
}

// wrapDeprecated makes a verb with old flag names warn about them before
// it runs.
func wrapDeprecated(c *cobra.Command) {
	has := false
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if _, ok := f.Annotations[aliasAnnotation]; ok {
			has = true
		}
	})
	if !has {
		return
	}
	inner := c.PreRunE
	c.PreRunE = func(cmd *cobra.Command, args []string) error {
		warnDeprecated(cmd)
		if inner != nil {
			return inner(cmd, args)
		}
		return nil
	}
}
