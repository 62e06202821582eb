package command

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/dataflow/spec"
)

func newSubmitCommand(g *globals) *cobra.Command {
	var parallelism int
	var fromSavepoint string
	var allowNonRestored, dryRun bool
	c := &cobra.Command{
		Use:   "submit FILE.yaml",
		Short: "Validate a job spec and submit it; prints the job id",
		Long: "Validate a job spec and submit it; prints the job id.\n\n" +
			"${VAR} and ${VAR:-default} in the file are replaced from the environment first.\n" +
			"Every error in the spec is printed with its path and nothing is submitted.\n" +
			"--from-savepoint restores the new job from a savepoint or a retained checkpoint\n" +
			"(its directory URI, as weir savepoint prints it), also at another parallelism.\n" +
			"State is matched to nodes by name: a savepoint with state for a node the job\n" +
			"does not have is refused unless --allow-non-restored-state drops that state.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readSpec(args[0])
			if err != nil {
				return err
			}
			data, err = spec.ExpandEnv(data, os.LookupEnv)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if int64(len(data)) > coordinator.DefaultMaxSpecBytes {
				return fmt.Errorf("%s: %s (after expanding ${VAR}s)", args[0], coordinator.SpecTooLarge(coordinator.DefaultMaxSpecBytes))
			}
			if cmd.Flags().Changed("parallelism") {
				if parallelism < 1 {
					return usagef("--parallelism must be at least 1")
				}
				if data, err = setTopLevel(data, "parallelism", strconv.Itoa(parallelism)); err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
			}
			if _, err := spec.Parse(data); err != nil {
				return fmt.Errorf("%s is not a valid job spec:\n%w", args[0], err)
			}
			if allowNonRestored && fromSavepoint == "" {
				return usagef("--allow-non-restored-state needs --from-savepoint")
			}
			if dryRun {
				var opts []api.RestoreOption
				if fromSavepoint != "" {
					opts = append(opts, api.FromSavepoint(fromSavepoint))
				}
				if allowNonRestored {
					opts = append(opts, api.AllowNonRestoredState())
				}
				dr, err := g.client().DryRun(cmd.Context(), data, opts...)
				if err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "%s is valid: job %q, %d vertices, not submitted\n", args[0], dr.Name, len(dr.Vertices))
				for _, v := range dr.Vertices {
					fmt.Fprintf(g.stdout, "  %s ×%d: %s\n", v.ID, v.Parallelism, strings.Join(v.Nodes, " → "))
				}
				if dr.RestoresFrom != "" {
					fmt.Fprintf(g.stdout, "  restores from %s\n", dr.RestoresFrom)
				}
				for _, w := range dr.Warnings {
					fmt.Fprintln(g.stderr, "warning:", w)
				}
				return nil
			}
			var opts []api.RestoreOption
			if fromSavepoint != "" {
				opts = append(opts, api.FromSavepoint(fromSavepoint))
			}
			if allowNonRestored {
				opts = append(opts, api.AllowNonRestoredState())
			}
			sub, err := g.client().SubmitJob(cmd.Context(), data, opts...)
			if err != nil {
				return err
			}
			// Warnings go to stderr: stdout is the job id alone, for scripts.
			for _, w := range sub.Warnings {
				fmt.Fprintln(g.stderr, "warning:", w)
			}
			fmt.Fprintln(g.stdout, sub.ID)
			return nil
		},
	}
	addClientFlags(c, g)
	c.Flags().IntVarP(&parallelism, "parallelism", "p", 0, "override the job's default parallelism")
	c.Flags().StringVar(&fromSavepoint, "from-savepoint", "", "restore from this savepoint or retained checkpoint (directory URI)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "check the spec against the coordinator (operators, paths, the savepoint) without submitting it")
	c.Flags().BoolVar(&allowNonRestored, "allow-non-restored-state", false, "with --from-savepoint: drop the state of nodes the job no longer has instead of refusing")
	return c
}

// readSpec reads a spec file up to the coordinator's size limit: a bigger
// file would be refused anyway, and reading /dev/zero or a huge file
// without a bound grew the CLI to 23 GB.
func readSpec(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, coordinator.DefaultMaxSpecBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(data)) > coordinator.DefaultMaxSpecBytes {
		return nil, fmt.Errorf("%s: %s", path, coordinator.SpecTooLarge(coordinator.DefaultMaxSpecBytes))
	}
	return data, nil
}

// setTopLevel sets a top-level scalar field of a YAML mapping document.
func setTopLevel(data []byte, key, value string) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("a job spec is a YAML mapping")
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: value}
			return yaml.Marshal(&doc)
		}
	}
	m.Content = append(m.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: value})
	return yaml.Marshal(&doc)
}
