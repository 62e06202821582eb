package command

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/weir-stream/weir/internal/buildinfo"
	"github.com/weir-stream/weir/internal/custombuild"
)

func newBuildCommand(g *globals) *cobra.Command {
	var (
		with   []string
		output string
	)
	c := &cobra.Command{
		Use:   "build --with <module>[@version][=<directory>] ... -o <binary>",
		Short: "Build a weir binary with Go modules of user operators compiled in",
		Long: `Build writes a main package that imports every --with module and weir's
command line, and compiles it with the go tool on PATH into one static
binary: a complete weir (coordinator, worker, dev, client) that also runs
the modules' operators. See docs/sdk-build.md.

--with takes module[@version][=directory]: a version (default latest) is
fetched through the Go module proxy; a directory replaces the module with
local sources. --with ` + buildinfo.WeirModule + `=<directory> or @<version>
picks the weir to build on (default: the one this binary was built from).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := custombuild.Options{Output: output, Log: g.stderr}
			if len(with) == 0 {
				return usagef("--with <module> is required at least once")
			}
			if output == "" {
				return usagef("-o <binary> is required")
			}
			ownWeir := false
			for _, w := range with {
				m, err := custombuild.ParseModule(w)
				if err != nil {
					return usageError{err}
				}
				ownWeir = ownWeir || m.Path == buildinfo.WeirModule
				o.With = append(o.With, m)
			}
			if !ownWeir {
				self, err := custombuild.Self()
				if err != nil {
					return err
				}
				o.Weir = self
			}
			if err := custombuild.Build(cmd.Context(), o); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "wrote %s\n", output)
			return nil
		},
	}
	c.Flags().StringArrayVar(&with, "with", nil, "module[@version][=directory] to compile in (repeatable)")
	c.Flags().StringVarP(&output, "output", "o", "", "the binary to write")
	return c
}
