package worker

import (
	"context"
	"errors"
	"log/slog"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/tlsconf"
	"github.com/weir-stream/weir/worker/exchange"
	"github.com/weir-stream/weir/worker/task"
)

// The real parser, graph builder, task runner and data exchange: the
// defaults for every Config field left nil.
func init() {
	wired.parseSpec = spec.Parse
	wired.buildGraph = graph.Build
	wired.newExchange = func(l *slog.Logger, s *tlsconf.Source) Exchange { return exchange.New(l, exchange.WithTLS(s)) }
	wired.runTask = func(ctx context.Context, d task.Deployment, env TaskEnv, c *dataflow.Counters) error {
		x, ok := env.Exchange.(*exchange.Exchange)
		if !ok || x == nil {
			return errors.New("worker: task.Run needs the worker's *exchange.Exchange; set Config.NewExchange to exchange.New or leave it nil")
		}
		return task.Run(ctx, d, task.Env{Builder: env.Builder, Logger: env.Logger, Exchange: x,
			Reporter: env.Reporter, OpenStore: env.OpenStore, Running: env.Running, InputEnded: env.InputEnded}, c)
	}
}
