package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is everything consultd reads from its environment, with flag overrides.
type Config struct {
	// Addr is where HTTP is served (CONSULT_ADDR); default 127.0.0.1:8080.
	Addr string
	// RedisURL (REDIS_URL): redis:// or rediss:// for one server, a comma-separated
	// list of host:port for a Redis Cluster. Empty runs an embedded redis-server.
	RedisURL string
	// SMTPURL (SMTP_URL): smtp://user:pass@host:port (STARTTLS when offered) or
	// smtps:// (implicit TLS). Empty writes digests as .eml files to DataDir/outbox.
	SMTPURL string
	// MailFrom (MAIL_FROM) is the digest's sender; default consult@localhost.
	MailFrom string
	// BaseURL (BASE_URL) is the public address used in links; default http://Addr.
	BaseURL string
	// DataDir (DATA_DIR) holds the embedded Redis's files, the outbox and the
	// generated admin token; default ./data.
	DataDir string
	// TimeZone (CONSULT_TZ) is the zone times are shown in; default Asia/Shanghai.
	TimeZone string
	// AdminToken (CONSULT_ADMIN_TOKEN) guards the admin API. Empty: one is generated
	// on first start into DataDir/admin-token and printed once.
	AdminToken string
	// Demo loads a demo consultation on a first start with an empty store
	// (CONSULT_DEMO, default true; -demo=false turns it off).
	Demo bool
	// AppendFsync is the embedded Redis's fsync policy (CONSULT_APPENDFSYNC):
	// always (default: a receipt is a promise) or everysec.
	AppendFsync string
	// Workers is the number of comment workers in this process (CONSULT_WORKERS); default 2.
	Workers int
	// RedisPoolSize is the go-redis pool size (CONSULT_REDIS_POOL); default 128: the
	// intake is one round trip per request, so the pool bounds concurrency.
	RedisPoolSize int
	// DigestRetry is the first wait before a failed digest e-mail is retried,
	// doubled each time up to 5 minutes (CONSULT_DIGEST_RETRY); default 10s.
	DigestRetry time.Duration
	// PprofAddr (CONSULT_PPROF_ADDR), when set, serves net/http/pprof there; for
	// profiling (make bench -profile). Keep it on loopback: it is not authenticated.
	PprofAddr string
	// LogLevel (CONSULT_LOG_LEVEL): debug, info (default), warn, error. At warn
	// and above the request log (one line per request) is off.
	LogLevel string
	// RequestTimeout (CONSULT_REQUEST_TIMEOUT) bounds a request's wait for Redis;
	// past it the answer is 503 with Retry-After. Zero means 3s.
	RequestTimeout time.Duration
	// TrustedProxies (CONSULT_TRUSTED_PROXIES, comma-separated CIDRs) are the
	// reverse proxies whose X-Forwarded-For names the client. Empty: the
	// connection's peer is the client and X-Forwarded-For is ignored.
	TrustedProxies []*net.IPNet
	// LimitsOff (CONSULT_LIMITS=off) switches the per-client rate limits and the
	// per-draft storage caps off, for load tests where every request comes from
	// one address. Redis's maxmemory stays.
	LimitsOff bool
	// SubmitsPerHour (CONSULT_SUBMITS_PER_HOUR) is one client's comments on one
	// draft an hour, after a burst of a tenth of it, where the draft names none
	// of its own. Zero means 600 (README, "Limits").
	SubmitsPerHour int
	// LookupsPerHour (CONSULT_LOOKUPS_PER_HOUR) is one client's receipt look-ups
	// an hour, after a burst of a tenth of it. Zero means 1200.
	LookupsPerHour int
	// DraftMaxComments and DraftMaxBytes (CONSULT_DRAFT_MAX_COMMENTS,
	// CONSULT_DRAFT_MAX_BYTES) cap what one draft stores unless the draft sets
	// its own caps; zero means the store's defaults (2,000,000 comments, 4 GiB).
	DraftMaxComments, DraftMaxBytes int64
}

// LoadConfig reads the environment, then flags.
func LoadConfig(args []string) (Config, error) {
	c := Config{
		Addr: env("CONSULT_ADDR", "127.0.0.1:8080"), RedisURL: os.Getenv("REDIS_URL"), SMTPURL: os.Getenv("SMTP_URL"),
		MailFrom: env("MAIL_FROM", "consult@localhost"), BaseURL: os.Getenv("BASE_URL"), DataDir: env("DATA_DIR", "./data"),
		TimeZone: env("CONSULT_TZ", "Asia/Shanghai"), AdminToken: os.Getenv("CONSULT_ADMIN_TOKEN"),
		Demo: env("CONSULT_DEMO", "true") != "false", AppendFsync: env("CONSULT_APPENDFSYNC", "always"),
		LogLevel: env("CONSULT_LOG_LEVEL", "info"), PprofAddr: os.Getenv("CONSULT_PPROF_ADDR"),
	}
	var err error
	if c.Workers, err = strconv.Atoi(env("CONSULT_WORKERS", "2")); err != nil {
		return c, fmt.Errorf("config: CONSULT_WORKERS: %w", err)
	}
	if c.RedisPoolSize, err = strconv.Atoi(env("CONSULT_REDIS_POOL", "128")); err != nil {
		return c, fmt.Errorf("config: CONSULT_REDIS_POOL: %w", err)
	}
	if c.DigestRetry, err = time.ParseDuration(env("CONSULT_DIGEST_RETRY", "10s")); err != nil {
		return c, fmt.Errorf("config: CONSULT_DIGEST_RETRY: %w", err)
	}
	if c.RequestTimeout, err = time.ParseDuration(env("CONSULT_REQUEST_TIMEOUT", "3s")); err != nil {
		return c, fmt.Errorf("config: CONSULT_REQUEST_TIMEOUT: %w", err)
	}
	for cidr := range strings.SplitSeq(os.Getenv("CONSULT_TRUSTED_PROXIES"), ",") {
		if cidr = strings.TrimSpace(cidr); cidr == "" {
			continue
		}
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			return c, fmt.Errorf("config: CONSULT_TRUSTED_PROXIES: %w", err)
		}
		c.TrustedProxies = append(c.TrustedProxies, n)
	}
	switch v := env("CONSULT_LIMITS", "on"); v {
	case "on", "off":
		c.LimitsOff = v == "off"
	default:
		return c, fmt.Errorf("config: CONSULT_LIMITS: on or off, not %q", v)
	}
	if c.SubmitsPerHour, err = strconv.Atoi(env("CONSULT_SUBMITS_PER_HOUR", "600")); err != nil {
		return c, fmt.Errorf("config: CONSULT_SUBMITS_PER_HOUR: %w", err)
	}
	if c.LookupsPerHour, err = strconv.Atoi(env("CONSULT_LOOKUPS_PER_HOUR", "1200")); err != nil {
		return c, fmt.Errorf("config: CONSULT_LOOKUPS_PER_HOUR: %w", err)
	}
	if c.DraftMaxComments, err = strconv.ParseInt(env("CONSULT_DRAFT_MAX_COMMENTS", "0"), 10, 64); err != nil {
		return c, fmt.Errorf("config: CONSULT_DRAFT_MAX_COMMENTS: %w", err)
	}
	if c.DraftMaxBytes, err = strconv.ParseInt(env("CONSULT_DRAFT_MAX_BYTES", "0"), 10, 64); err != nil {
		return c, fmt.Errorf("config: CONSULT_DRAFT_MAX_BYTES: %w", err)
	}
	fs := flag.NewFlagSet("consultd", flag.ContinueOnError)
	fs.StringVar(&c.Addr, "addr", c.Addr, "HTTP listen address (CONSULT_ADDR)")
	fs.StringVar(&c.RedisURL, "redis", c.RedisURL, "Redis URL or cluster host:port list; empty = embedded (REDIS_URL)")
	fs.StringVar(&c.DataDir, "data", c.DataDir, "data directory (DATA_DIR)")
	fs.StringVar(&c.BaseURL, "base-url", c.BaseURL, "public base URL (BASE_URL)")
	fs.BoolVar(&c.Demo, "demo", c.Demo, "load a demo consultation into an empty store (CONSULT_DEMO)")
	fs.StringVar(&c.AppendFsync, "appendfsync", c.AppendFsync, "embedded Redis fsync policy: always or everysec (CONSULT_APPENDFSYNC)")
	fs.IntVar(&c.Workers, "workers", c.Workers, "comment workers in this process (CONSULT_WORKERS)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.BaseURL == "" {
		c.BaseURL = "http://" + c.Addr
	}
	return c, c.Validate()
}

// Validate reports every problem at once, at start.
func (c Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("CONSULT_ADDR is empty"))
	}
	if c.RedisURL != "" && !strings.Contains(c.RedisURL, "://") && !strings.Contains(c.RedisURL, ":") {
		errs = append(errs, errors.New("REDIS_URL: want redis://, rediss:// or host:port[,host:port...]"))
	}
	if c.SMTPURL != "" {
		u, err := url.Parse(c.SMTPURL)
		if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Host == "" {
			// Never echo the URL: it may hold a password.
			errs = append(errs, errors.New("SMTP_URL: want smtp://user:pass@host:port or smtps://..."))
		}
	}
	if _, err := time.LoadLocation(c.TimeZone); err != nil {
		errs = append(errs, fmt.Errorf("CONSULT_TZ: %w", err))
	}
	if c.AppendFsync != "always" && c.AppendFsync != "everysec" {
		errs = append(errs, errors.New("CONSULT_APPENDFSYNC: always or everysec"))
	}
	if c.Workers < 1 || c.RedisPoolSize < 1 {
		errs = append(errs, errors.New("CONSULT_WORKERS and CONSULT_REDIS_POOL must be at least 1"))
	}
	if c.RequestTimeout < 0 || c.SubmitsPerHour < 0 || c.LookupsPerHour < 0 {
		errs = append(errs, errors.New("CONSULT_REQUEST_TIMEOUT, CONSULT_SUBMITS_PER_HOUR and CONSULT_LOOKUPS_PER_HOUR must not be negative"))
	}
	if _, err := url.Parse(c.BaseURL); err != nil {
		errs = append(errs, fmt.Errorf("BASE_URL: %w", err))
	}
	return errors.Join(errs...)
}

func env(k, def string) string {
	if v, ok := os.LookupEnv(k); ok && v != "" {
		return v
	}
	return def
}
