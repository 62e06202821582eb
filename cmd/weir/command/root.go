// Package command holds the weir CLI: one file per verb, all output through
// one printer (table or JSON), exit codes 0 ok, 1 failed, 2 usage.
package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/internal/logging"
)

// Exit codes.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// usageError marks a mistake in how the command was called (exit 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// globals are the flags every client verb shares.
type globals struct {
	coordinator string
	output      string
	stdout      io.Writer
	stderr      io.Writer
	// conn is how client verbs reach the REST API (client_config.go).
	conn clientConn
	// releaseSignals stops SIGINT and SIGTERM from cancelling the
	// command's context, for a command that handles them itself (weir
	// worker drains on SIGTERM); nil when nothing was registered.
	releaseSignals func()
}

// Execute runs the CLI with args and returns the process exit code.
func Execute(args []string) int {
	return execute(args, os.Stdout, os.Stderr)
}

func execute(args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	// signal.NotifyContext, except that releasing the signals (weir
	// worker, which handles them itself) does not cancel the context.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()
	g.releaseSignals = func() { signal.Stop(sigs) }
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(stderr, "error:", err)
	var u usageError
	if errors.As(err, &u) {
		return ExitUsage
	}
	return ExitFailed
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "weir",
		Short:         "weir is a distributed stream processor",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newCoordinatorCommand(g),
		newWorkerCommand(g),
		newDevCommand(g),
		newSubmitCommand(g),
		newJobsCommand(g),
		newStatusCommand(g),
		newCancelCommand(g),
		newWorkersCommand(g),
		newLoadgenCommand(g),
		newVerifyCommand(g),
		newCheckpointsCommand(g),
		newRestartsCommand(g),
		newLagCommand(g),
		newSavepointCommand(g),
		newSavepointsCommand(g),
		newCheckpointCommand(g),
		newBuildCommand(g),
		newVersionCommand(g),
		newTokenCommand(g),
	)
	addJobCompletion(root, g)
	wrapArgs(root)
	return root
}

// wrapArgs turns cobra's argument-count errors into usage errors, and makes
// a group verb (one with sub-verbs and no action, such as loadgen) print its
// help when called bare and refuse an unknown sub-verb: left to cobra, an
// unknown verb exits 1 at the top level and 0 (help) below it.
func wrapArgs(c *cobra.Command) {
	wrapDeprecated(c)
	if c.HasSubCommands() && !c.Runnable() {
		c.Args = unknownSubcommand
		c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
	if c.Args != nil {
		inner := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := inner(cmd, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		wrapArgs(sub)
	}
}

func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return errors.New(msg)
}

// addClientFlags adds --coordinator URL to a verb that talks to the REST API.
func addClientFlags(c *cobra.Command, g *globals) {
	def := os.Getenv("WEIR_COORDINATOR")
	if def == "" {
		def = "http://127.0.0.1:8081"
	}
	// The usage does not spell the default out: cobra appends it, the
	// value of WEIR_COORDINATOR when that is set.
	c.Flags().StringVar(&g.coordinator, "coordinator", def,
		"coordinator REST URL; WEIR_COORDINATOR sets the default")
	addConnFlags(c, g)
}

// client returns a REST client for the --coordinator URL, with the token
// and CA resolved before the verb ran.
func (g *globals) client() *api.Client {
	u := g.coordinator
	if !strings.Contains(u, "://") {
		u = "http://" + u
	}
	return api.NewClient(strings.TrimRight(u, "/"), g.conn.opts...)
}

// addOutputFlag adds -o table|json to a listing verb.
func addOutputFlag(c *cobra.Command, g *globals) {
	c.Flags().StringVarP(&g.output, "output", "o", "table", "output format: table or json")
}

// newLogger is a process's logger: --log-level and --log-format.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	l, err := logging.New(w, level, format)
	if err != nil {
		return nil, usageError{err}
	}
	return l, nil
}

// addLogFlags adds --log-level and --log-format to a process verb.
func addLogFlags(c *cobra.Command, level, format *string) {
	c.Flags().StringVar(level, "log-level", "info", "debug, info, warn or error")
	c.Flags().StringVar(format, "log-format", "text", "text (key=value) or json (one object a line); each key appears once a line")
}
