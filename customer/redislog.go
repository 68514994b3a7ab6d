package customer

import (
	"context"
	"fmt"
	"log/slog"
)

// GoRedisLogger routes go-redis's own log lines (failed dials while Redis is
// down, connection-pool trouble) into slog. go-redis has one process-wide
// logger and no per-client one, so this package never installs it: the
// program does, once, at start-up:
//
//	redis.SetLogger(customer.GoRedisLogger{Logger: logger})
//
// The lines are logged at Warn: go-redis only logs trouble.
type GoRedisLogger struct {
	Logger *slog.Logger
}

// Printf implements go-redis's logging interface.
func (g GoRedisLogger) Printf(ctx context.Context, format string, v ...any) {
	if g.Logger == nil {
		return
	}
	g.Logger.WarnContext(ctx, "go-redis", "detail", fmt.Sprintf(format, v...))
}
