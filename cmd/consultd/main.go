// Command consultd is consult's one binary: the web and API server, the comment
// workers and the digest scheduler, and (by default) its own supervised redis-server.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	_ "time/tzdata" // Asia/Shanghai on machines without a zone database

	"github.com/redis/go-redis/v9"

	"consult/accounts"
	"consult/handlers"
	"consult/notify"
	"consult/store"
)

func main() {
	if os.Getenv("GOGC") == "" {
		// consultd's live heap is a few megabytes, so the default collects after
		// every few thousand requests; a larger ratio costs little memory and
		// gives the intake back the collector's share of a core.
		debug.SetGCPercent(400)
	}
	cfg, err := LoadConfig(os.Args[1:])
	if err == nil && len(cfg.Command) > 0 {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err = runCommand(ctx, cfg, terminal{in: os.Stdin, out: os.Stdout, err: os.Stderr, password: ttyPassword})
		stop()
	} else if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		log, lw := newLogger(cfg.LogLevel)
		err = run(ctx, cfg, log, nil)
		stop()
		lw.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "consultd:", err)
		os.Exit(1)
	}
}

// run serves until ctx is cancelled, then shuts down in order. started, when not
// nil, is called with the listening address once requests are being served.
func run(ctx context.Context, cfg Config, log *slog.Logger, started func(addr string)) error {
	loc, _ := time.LoadLocation(cfg.TimeZone)
	var err error
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}

	// Redis: the embedded child, or the configured server or cluster.
	var emb *embeddedRedis
	var rdb redis.UniversalClient
	if cfg.RedisURL == "" {
		// The data directory's lock: one embedded redis-server on its files, and
		// the command line knows to use ours (connectForCommand). A command
		// holds it for a second or two.
		lock, err := lockDataDir(cfg.DataDir, 30*time.Second)
		if err != nil {
			return err
		}
		defer lock.Close()
		if emb, err = startEmbedded(ctx, cfg, log); err != nil {
			return err
		}
		// Deferred first, so it runs last: the embedded server stops after the last write.
		defer emb.Stop()
		addrFile := filepath.Join(cfg.DataDir, "redis-addr")
		if err := os.WriteFile(addrFile, []byte(emb.Addr()+"\n"), 0o600); err != nil {
			return fmt.Errorf("redis-addr: %w", err)
		}
		defer os.Remove(addrFile)
		rdb = redis.NewClient(withTimeouts(emb.ClientOptions(cfg.RedisPoolSize)))
	} else if rdb, err = newRedisClient(cfg.RedisURL, cfg.RedisPoolSize); err != nil {
		return err
	}
	defer rdb.Close()
	// Read back from the server, embedded or not: what counts is what it runs with.
	ready := &readiness{rdb: rdb, warnings: persistenceWarnings(ctx, rdb)}
	for _, w := range ready.warnings {
		log.Warn("redis persistence", "warning", w)
	}

	as, err := store.NewAccounts(rdb, store.AccountsConfig{
		Sessions: accounts.SessionPolicy{Idle: cfg.SessionIdle, Absolute: cfg.SessionMax},
	})
	if err != nil {
		return err
	}
	actx, cancelAdmins := context.WithTimeout(ctx, 10*time.Second)
	hasAdmin, err := as.HasAdmin(actx)
	cancelAdmins()
	if err != nil {
		return fmt.Errorf("read the staff accounts: %w", err)
	}
	token, err := adminToken(cfg, hasAdmin, log)
	if err != nil {
		return err
	}

	ds := store.NewDrafts(rdb, nil)
	cs := store.NewComments(rdb, ds, store.IntakeConfig{
		MaxComments: cfg.DraftMaxComments, MaxBytes: cfg.DraftMaxBytes, CapsOff: cfg.LimitsOff, Logger: log, Lanes: cfg.IntakeLanes,
	})
	if cfg.Demo {
		if loaded, err := loadDemo(ctx, ds, time.Now()); err != nil {
			log.Warn("demo consultation not loaded", "err", err)
		} else if loaded {
			log.Info("demo consultation loaded", "url", strings.TrimRight(cfg.BaseURL, "/")+handlers.DraftPath("hongya-fazhi-2026"))
		}
	}

	var mailer notify.Mailer
	if cfg.SMTPURL == "" {
		if mailer, err = notify.NewOutbox(filepath.Join(cfg.DataDir, "outbox"), log); err != nil {
			return err
		}
	} else {
		m, err := notify.NewSMTPMailer(notify.SMTPConfig{URL: cfg.SMTPURL})
		if err != nil {
			return err
		}
		log.Info("digests sent by SMTP", "server", m.String())
		mailer = m
	}
	linkKey, err := notify.LoadLinkKey(ctx, rdb, cfg.LinkKey)
	if err != nil {
		return err
	}
	sched, err := notify.NewScheduler(rdb, ds, cs, mailer, notify.Config{
		From: cfg.MailFrom, BaseURL: cfg.BaseURL, Location: loc,
		Paths: notify.Paths{Draft: handlers.DraftPath, File: handlers.DigestFilePath}, Logger: log, RetryBase: cfg.DigestRetry,
		MaxBytes: cfg.DigestMaxBytes, LinkKey: linkKey, LinkTTL: cfg.DigestLinkTTL,
		// On the data disk: /tmp may be a tmpfs, which would hold a digest in memory.
		SpillDir: filepath.Join(cfg.DataDir, "tmp"),
	})
	if err != nil {
		return err
	}

	host, _ := os.Hostname()
	workers := make([]*store.Worker, cfg.Workers)
	for i := range workers {
		workers[i] = store.NewWorker(rdb, store.WorkerConfig{
			Consumer: fmt.Sprintf("%s-%d-%d", host, os.Getpid(), i), Logger: log,
		})
	}

	// The secret shared by replicas (client hashes, proof-of-work challenges, the
	// request log's day keys): without it they would not recognise each other's.
	sctx, cancelSecret := context.WithTimeout(ctx, 10*time.Second)
	secret, err := store.Secret(sctx, rdb)
	cancelSecret()
	if err != nil {
		return fmt.Errorf("read the service secret from Redis: %w", err)
	}
	hc := handlers.Config{
		Drafts: ds, Comments: cs, Digests: sched, DigestFiles: sched, Records: store.NewRecords(rdb), Ready: ready, Accounts: as, AdminToken: token,
		Location: loc, BaseURL: cfg.BaseURL, Logger: log,
		Secure:         strings.HasPrefix(cfg.BaseURL, "https://"),
		Metrics:        func(ctx context.Context) []handlers.Metric { return metrics(cs, workers, sched) },
		RequestTimeout: cfg.RequestTimeout, TrustedProxies: cfg.TrustedProxies,
		Proofs: store.NewProofs(rdb), Secret: secret,
	}
	if !cfg.LimitsOff {
		hc.Limiter = store.NewLimiter(rdb, store.LimiterConfig{
			Comments: store.Rate{Burst: cfg.SubmitsPerHour / 10, PerHour: cfg.SubmitsPerHour},
			Lookups:  store.Rate{Burst: cfg.LookupsPerHour / 10, PerHour: cfg.LookupsPerHour},
		})
	}
	e, err := handlers.New(hc)
	if err != nil {
		return err
	}

	srv := &http.Server{Addr: cfg.Addr, Handler: e, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}

	// Background loops run on their own context, so that shutdown can stop them in
	// order after HTTP has drained.
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	var embWG, schedWG, workWG sync.WaitGroup
	if emb != nil {
		embWG.Add(1)
		go func() { defer embWG.Done(); _ = emb.Run(bg) }()
	}
	schedCtx, stopSched := context.WithCancel(bg)
	schedWG.Add(1)
	go func() {
		defer schedWG.Done()
		if err := sched.Run(schedCtx); err != nil {
			log.Error("scheduler stopped", "err", err)
		}
	}()
	workCtx, stopWork := context.WithCancel(bg)
	for _, w := range workers {
		workWG.Add(1)
		go func() {
			defer workWG.Done()
			if err := w.Run(workCtx); err != nil {
				log.Error("worker stopped", "err", err)
			}
		}()
	}

	if cfg.PprofAddr != "" {
		go servePprof(cfg.PprofAddr, log)
	}
	log.Info("consultd listening", "url", "http://"+ln.Addr().String(), "base_url", cfg.BaseURL)
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()
	if started != nil {
		started(ln.Addr().String())
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case err := <-srvErr:
		if !errors.Is(err, http.ErrServerClosed) {
			serveErr = fmt.Errorf("http: %w", err)
			log.Error("http server failed", "err", err)
		}
	}
	log.Info("shutting down")
	// Shutdown order: stop taking HTTP traffic (in-flight requests finish, so every
	// receipt given is stored) and close the intake's pipelines; stop the scheduler
	// (a send in progress finishes or is left for the next start, recorded per
	// recipient); stop the workers (entries read but not settled stay pending and are
	// claimed later); then the deferred calls close Redis and stop the embedded
	// redis-server last, after the final write.
	shutCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	cs.Close()
	stopSched()
	schedWG.Wait()
	stopWork()
	workWG.Wait()
	stopBG()
	embWG.Wait()
	log.Info("stopped")
	return serveErr
}

// newLogger logs to stderr through a buffer (see logWriter); close the writer
// last, after the final line.
func newLogger(level string) (*slog.Logger, *logWriter) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	w := newLogWriter(os.Stderr)
	return slog.New(flushingHandler{Handler: slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}), w: w}), w
}

// newRedisClient reads REDIS_URL: a URL for one server, a list of host:port for a
// Cluster. Either way the rest of the code sees a UniversalClient.
func newRedisClient(u string, pool int) (redis.UniversalClient, error) {
	if strings.Contains(u, "://") {
		o, err := redis.ParseURL(u)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		o.PoolSize = pool
		return redis.NewClient(withTimeouts(o)), nil
	}
	addrs := strings.Split(u, ",")
	if len(addrs) == 1 {
		return redis.NewClient(withTimeouts(&redis.Options{Addr: addrs[0], PoolSize: pool})), nil
	}
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, PoolSize: pool,
		ContextTimeoutEnabled: true, DialTimeout: redisDialTimeout, ReadTimeout: redisIOTimeout,
		WriteTimeout: redisIOTimeout, PoolTimeout: redisIOTimeout}), nil
}

// A request waits for Redis no longer than its own deadline (the client honours
// contexts' deadlines), and never longer than these: a hung Redis is answered
// with 503 within seconds, not after the operating system gives up on TCP.
const (
	redisDialTimeout = 2 * time.Second
	redisIOTimeout   = 3 * time.Second
)

func withTimeouts(o *redis.Options) *redis.Options {
	o.ContextTimeoutEnabled = true
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = redisDialTimeout, redisIOTimeout, redisIOTimeout, redisIOTimeout
	return o
}

// persistenceWarnings reads an external server's persistence settings: a receipt is
// a promise only if an acknowledged write survives a crash, and is not evicted.
func persistenceWarnings(ctx context.Context, rdb redis.UniversalClient) []string {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	v, err := rdb.ConfigGet(cctx, "app*").Result()
	if err != nil {
		return []string{"could not read the Redis persistence settings (CONFIG GET refused?): acknowledged comments may be lost on a crash unless appendonly yes and appendfsync always"}
	}
	var w []string
	if v["appendonly"] != "yes" {
		w = append(w, "Redis appendonly is not yes: acknowledged comments can be lost on a crash")
	} else if v["appendfsync"] != "always" {
		w = append(w, "Redis appendfsync is "+v["appendfsync"]+", not always: up to a second of acknowledged comments can be lost on a crash")
	}
	if p, err := rdb.ConfigGet(cctx, "maxmemory-policy").Result(); err == nil && p["maxmemory-policy"] != "noeviction" {
		w = append(w, "Redis maxmemory-policy is "+p["maxmemory-policy"]+", not noeviction: a full Redis deletes keys, comments among them, instead of refusing writes")
	}
	return w
}

type readiness struct {
	rdb      redis.UniversalClient
	warnings []string
}

func (r *readiness) Ready(ctx context.Context) ([]string, error) {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return r.warnings, r.rdb.Ping(cctx).Err()
}

// adminToken returns the admin token: CONSULT_ADMIN_TOKEN, with a warning
// while admin accounts exist (it is an admin that is no one, for the first
// setup and automation); else, while no admin account exists, the one
// generated on the first start into DATA_DIR (printed once, to the terminal
// only, never to the log); else none, and a generated one left from before is
// deleted: the admins sign in and make their own tokens.
func adminToken(cfg Config, hasAdmin bool, log *slog.Logger) (string, error) {
	if cfg.AdminToken != "" {
		if hasAdmin {
			log.Warn("CONSULT_ADMIN_TOKEN is set while admin accounts exist: it acts as an admin that is no one's account; give automation a user's token (consultd token create) and unset it")
		}
		return cfg.AdminToken, nil
	}
	path := filepath.Join(cfg.DataDir, "admin-token")
	if hasAdmin {
		if err := os.Remove(path); err == nil {
			log.Info("the generated admin token is retired: an admin account exists", "file", path)
		} else if !os.IsNotExist(err) {
			return "", fmt.Errorf("admin token: %w", err)
		}
		return "", nil
	}
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	fmt.Fprintf(os.Stderr, "\nconsultd: generated an admin token (stored in %s; shown only this once; it works until the first admin account exists: consultd user add NAME --role admin):\n\n    %s\n\n", path, tok)
	return tok, nil
}

func metrics(cs *store.Comments, ws []*store.Worker, sched *notify.Scheduler) []handlers.Metric {
	st := cs.Stats()
	var processed int64
	var lag time.Duration
	for _, w := range ws {
		p, l := w.Stats()
		processed += p
		lag = max(lag, l)
	}
	sent, failed := sched.Stats()
	return []handlers.Metric{
		{Name: "consult_comments_receipts_issued_total", Help: "Comments given a receipt by this process.", Type: "counter", Value: float64(st.Issued)},
		{Name: "consult_comments_refused_total", Help: "Comment submissions refused (invalid or outside the window).", Type: "counter", Value: float64(st.Refused)},
		{Name: "consult_comments_draft_full_total", Help: "Comments refused because their draft reached its storage cap.", Type: "counter", Value: float64(st.Full)},
		{Name: "consult_comments_shed_total", Help: "Comments refused at once (503) because the intake's queue was full.", Type: "counter", Value: float64(st.Shed)},
		{Name: "consult_comments_stored_undelivered_total", Help: "Comments stored after the client stopped waiting, so no receipt was delivered (found by this process).", Type: "counter", Value: float64(st.Undelivered)},
		{Name: "consult_comments_processed_total", Help: "Queued comments stored by this process's workers.", Type: "counter", Value: float64(processed)},
		{Name: "consult_queue_lag_seconds", Help: "Age of the newest comment in the last batch a worker stored.", Type: "gauge", Value: lag.Seconds()},
		{Name: "consult_digests_sent_total", Help: "Digest e-mails sent.", Type: "counter", Value: float64(sent)},
		{Name: "consult_digests_failed_total", Help: "Digest e-mail attempts that failed.", Type: "counter", Value: float64(failed)},
	}
}

func splitHostPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	return h, n, err
}

// servePprof serves the profiler on its own listener, never on the public one.
func servePprof(addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Info("pprof listening", "addr", addr)
	if err := http.ListenAndServe(addr, mux); err != nil {
		log.Warn("pprof stopped", "err", err)
	}
}
