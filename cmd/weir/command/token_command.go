package command

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/weir-stream/weir/coordinator/auth"
)

func newTokenCommand(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "token",
		Short: "Make REST API tokens for a coordinator's --tokens-file",
	}
	var role, file string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Make a new token: print it, and its tokens-file line (or append the line to --tokens-file)",
		Long: "Make a new random token for NAME with --role viewer, operator or admin. The token is printed once\n" +
			"and kept nowhere; the coordinator's tokens file holds only its hash. With --tokens-file the line is\n" +
			"appended to that file (created with mode 0600); a running coordinator reads it again at once.",
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			name := args[0]
			if err := auth.CheckName(name); err != nil {
				return usageError{err}
			}
			r, err := auth.ParseRole(role)
			if err != nil {
				return usagef("--role: %v", err)
			}
			tok, err := auth.NewToken()
			if err != nil {
				return err
			}
			line := auth.Line(name, r, tok)
			if file == "" {
				fmt.Fprintf(g.stdout, "token: %s\ntokens-file line: %s\n", tok, line)
				return nil
			}
			f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
			if err != nil {
				return fmt.Errorf("--tokens-file: %w", err)
			}
			// A file edited by hand may lack its last newline; the new
			// line must not join the last one.
			if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
				last := make([]byte, 1)
				if rf, err := os.Open(file); err == nil {
					if _, err := rf.ReadAt(last, fi.Size()-1); err == nil && last[0] != '\n' {
						line = "\n" + line
					}
					rf.Close()
				}
			}
			if _, err := fmt.Fprintln(f, line); err != nil {
				f.Close()
				return fmt.Errorf("--tokens-file %s: %w", file, err)
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("--tokens-file %s: %w", file, err)
			}
			fmt.Fprintf(g.stdout, "token: %s\n(%s %s appended to %s)\n", tok, name, r, file)
			return nil
		},
	}
	create.Flags().StringVar(&role, "role", "viewer", "viewer (reads), operator (also submit, cancel, savepoint) or admin (everything)")
	create.Flags().StringVar(&file, "tokens-file", "", "append the token's line to this file instead of printing it")
	c.AddCommand(create)
	return c
}
