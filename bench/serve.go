package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"consult/bench/internal/consultd"
)

// Baseline servers: the harness runs itself again with -serve, so that each
// baseline is its own process, with its own GOMAXPROCS and garbage collector, as
// consultd is.

// xaddStream is the stream the decode+XADD baseline appends to.
const xaddStream = "bench:xadd"

// serve runs a baseline server until SIGTERM or SIGINT.
//   - bare: echo with no middleware; the comment route answers 202 and reads nothing.
//   - xadd: echo with no middleware; the comment route decodes the JSON as consultd's
//     handler does, XADDs the body to one stream and answers 202 with the entry id.
//
// Both serve the same route as consultd, so that the router does the same work,
// and /healthz for the harness.
func serve(mode, addr, redisAddr string, pool int) error {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	var rdb *redis.Client
	switch mode {
	case "bare":
		e.POST("/api/v1/drafts/:id/comments", func(c echo.Context) error {
			return c.NoContent(http.StatusAccepted)
		})
	case "xadd":
		if redisAddr == "" {
			return errors.New("-serve xadd needs -redis host:port")
		}
		rdb = redis.NewClient(&redis.Options{Addr: redisAddr, PoolSize: pool})
		defer rdb.Close()
		e.POST("/api/v1/drafts/:id/comments", func(c echo.Context) error {
			body, err := io.ReadAll(c.Request().Body)
			if err != nil {
				return err
			}
			var in consultd.Comment // the same fields as consultd's comment route
			if err := json.Unmarshal(body, &in); err != nil {
				return echo.NewHTTPError(http.StatusBadRequest, err.Error())
			}
			id, err := rdb.XAdd(c.Request().Context(), &redis.XAddArgs{Stream: xaddStream, Values: []any{"c", body}}).Result()
			if err != nil {
				return err
			}
			return c.JSON(http.StatusAccepted, map[string]string{"id": id})
		})
	default:
		return fmt.Errorf("-serve %q: want bare or xadd", mode)
	}
	// The same server timeouts as consultd.
	srv := &http.Server{Addr: addr, Handler: e, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shut)
}
