package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"net"
	"net/url"
	"os"
	"path"
	"slices"
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
	// AdminToken (CONSULT_ADMIN_TOKEN) is an admin's Bearer credential on the API
	// that is no one's account (recorded as the actor "admin-token"): for the
	// first setup and for automation; consultd warns at start while it is set
	// and an admin account exists. Empty: while no admin account exists one is
	// generated into DataDir/admin-token and printed once; once one exists, the
	// generated one is deleted and there is no admin token.
	AdminToken string
	// SessionIdle (CONSULT_SESSION_IDLE) ends a staff session unused this long;
	// zero means 30 minutes.
	SessionIdle time.Duration
	// SessionMax (CONSULT_SESSION_MAX) ends a staff session this long after
	// sign-in, used or not; zero means 12 hours.
	SessionMax time.Duration
	// Command is a subcommand and its arguments ("user add …", "token list"):
	// it runs against the same Redis and exits. Empty: serve.
	Command []string
	// Demo loads a demo consultation on a first start with an empty store
	// (CONSULT_DEMO, default true; -demo=false turns it off).
	Demo bool
	// AppendFsync is the embedded Redis's fsync policy (CONSULT_APPENDFSYNC):
	// always (default: a receipt is a promise) or everysec.
	AppendFsync string
	// RedisMaxMemory caps the embedded Redis, in bytes (CONSULT_REDIS_MAXMEMORY:
	// bytes, or with a unit as Redis writes them: 4gb, 512mb); zero means no limit.
	// Unset, it is half the memory this process may use (the smaller of
	// /proc/meminfo's MemTotal and the cgroup's limit): the rest is for consultd,
	// the page cache and the copy-on-write of Redis's append-only-file rewrite.
	// The embedded server never evicts: when full it refuses writes (503s), which
	// a flood may cause, rather than delete a comment. Ignored with REDIS_URL.
	RedisMaxMemory int64
	// Workers is the number of comment workers in this process (CONSULT_WORKERS); default 2.
	Workers int
	// RedisPoolSize is the go-redis pool size (CONSULT_REDIS_POOL); default 128: the
	// intake is one round trip per request, so the pool bounds concurrency.
	RedisPoolSize int
	// DigestRetry is the first wait before a failed digest e-mail is retried,
	// doubled each time up to 5 minutes (CONSULT_DIGEST_RETRY); default 10s.
	DigestRetry time.Duration
	// DigestMaxBytes is the largest digest e-mail, encoded (CONSULT_DIGEST_MAX_BYTES);
	// default 10000000. A larger digest is sent as its summary with download links.
	DigestMaxBytes int64
	// DigestLinkTTL is how long a digest's download links work
	// (CONSULT_DIGEST_LINK_TTL); default 720h (30 days).
	DigestLinkTTL time.Duration
	// LinkKey (CONSULT_LINK_KEY, at least 32 bytes) signs the download links; the
	// same on every replica. Empty: one is generated once and kept in Redis (see
	// notify.LoadLinkKey). A secret: never logged.
	LinkKey string
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
	// IntakeLanes (CONSULT_INTAKE_LANES) is how many intake pipelines may be in
	// flight at once; zero means the store's default (4). Fewer make larger
	// batches, which cost Redis less per comment.
	IntakeLanes int
}

// LoadConfig reads the environment, then flags.
func LoadConfig(args []string) (Config, error) {
	c := Config{
		Addr: env("CONSULT_ADDR", "127.0.0.1:8080"), RedisURL: os.Getenv("REDIS_URL"), SMTPURL: os.Getenv("SMTP_URL"),
		MailFrom: env("MAIL_FROM", "consult@localhost"), BaseURL: os.Getenv("BASE_URL"), DataDir: env("DATA_DIR", "./data"),
		TimeZone: env("CONSULT_TZ", "Asia/Shanghai"), AdminToken: os.Getenv("CONSULT_ADMIN_TOKEN"),
		Demo: env("CONSULT_DEMO", "true") != "false", AppendFsync: env("CONSULT_APPENDFSYNC", "always"),
		LogLevel: env("CONSULT_LOG_LEVEL", "info"), PprofAddr: os.Getenv("CONSULT_PPROF_ADDR"),
		LinkKey: os.Getenv("CONSULT_LINK_KEY"),
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
	if c.SessionIdle, err = time.ParseDuration(env("CONSULT_SESSION_IDLE", "30m")); err != nil {
		return c, fmt.Errorf("config: CONSULT_SESSION_IDLE: %w", err)
	}
	if c.SessionMax, err = time.ParseDuration(env("CONSULT_SESSION_MAX", "12h")); err != nil {
		return c, fmt.Errorf("config: CONSULT_SESSION_MAX: %w", err)
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
	if c.IntakeLanes, err = strconv.Atoi(env("CONSULT_INTAKE_LANES", "0")); err != nil || c.IntakeLanes < 0 {
		return c, errors.New("config: CONSULT_INTAKE_LANES: a number of pipelines, 0 for the default")
	}
	if c.DraftMaxComments, err = strconv.ParseInt(env("CONSULT_DRAFT_MAX_COMMENTS", "0"), 10, 64); err != nil {
		return c, fmt.Errorf("config: CONSULT_DRAFT_MAX_COMMENTS: %w", err)
	}
	if c.DraftMaxBytes, err = strconv.ParseInt(env("CONSULT_DRAFT_MAX_BYTES", "0"), 10, 64); err != nil {
		return c, fmt.Errorf("config: CONSULT_DRAFT_MAX_BYTES: %w", err)
	}
	if v := os.Getenv("CONSULT_REDIS_MAXMEMORY"); v != "" {
		if c.RedisMaxMemory, err = parseBytes(v); err != nil {
			return c, fmt.Errorf("config: CONSULT_REDIS_MAXMEMORY: %w", err)
		}
	} else if c.RedisURL == "" {
		mem, err := memoryLimit(os.DirFS("/"))
		if err != nil {
			return c, fmt.Errorf("config: CONSULT_REDIS_MAXMEMORY unset and the machine's memory unknown (set it; 0 means no limit): %w", err)
		}
		c.RedisMaxMemory = mem / 2
	}
	if c.DigestMaxBytes, err = strconv.ParseInt(env("CONSULT_DIGEST_MAX_BYTES", "10000000"), 10, 64); err != nil {
		return c, fmt.Errorf("config: CONSULT_DIGEST_MAX_BYTES: %w", err)
	}
	if c.DigestLinkTTL, err = time.ParseDuration(env("CONSULT_DIGEST_LINK_TTL", "720h")); err != nil {
		return c, fmt.Errorf("config: CONSULT_DIGEST_LINK_TTL: %w", err)
	}
	fs := flag.NewFlagSet("consultd", flag.ContinueOnError)
	fs.StringVar(&c.Addr, "addr", c.Addr, "HTTP listen address (CONSULT_ADDR)")
	fs.StringVar(&c.RedisURL, "redis", c.RedisURL, "Redis URL or cluster host:port list; empty = embedded (REDIS_URL)")
	fs.StringVar(&c.DataDir, "data", c.DataDir, "data directory (DATA_DIR)")
	fs.StringVar(&c.BaseURL, "base-url", c.BaseURL, "public base URL (BASE_URL)")
	fs.BoolVar(&c.Demo, "demo", c.Demo, "load a demo consultation into an empty store (CONSULT_DEMO)")
	fs.StringVar(&c.AppendFsync, "appendfsync", c.AppendFsync, "embedded Redis fsync policy: always or everysec (CONSULT_APPENDFSYNC)")
	fs.IntVar(&c.Workers, "workers", c.Workers, "comment workers in this process (CONSULT_WORKERS)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: consultd [flags]             serve\n       consultd [flags] user|token …  manage staff accounts (consultd user -h)\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.Command = fs.Args()
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
	if c.RedisMaxMemory < 0 {
		errs = append(errs, errors.New("CONSULT_REDIS_MAXMEMORY is negative"))
	}
	if c.Workers < 1 || c.RedisPoolSize < 1 {
		errs = append(errs, errors.New("CONSULT_WORKERS and CONSULT_REDIS_POOL must be at least 1"))
	}
	if c.SessionIdle < 0 || c.SessionMax < 0 {
		errs = append(errs, errors.New("CONSULT_SESSION_IDLE and CONSULT_SESSION_MAX must not be negative"))
	}
	if c.RequestTimeout < 0 || c.SubmitsPerHour < 0 || c.LookupsPerHour < 0 {
		errs = append(errs, errors.New("CONSULT_REQUEST_TIMEOUT, CONSULT_SUBMITS_PER_HOUR and CONSULT_LOOKUPS_PER_HOUR must not be negative"))
	}
	if c.DigestMaxBytes < 100_000 {
		errs = append(errs, errors.New("CONSULT_DIGEST_MAX_BYTES: at least 100000"))
	}
	if c.DigestLinkTTL < time.Hour {
		errs = append(errs, errors.New("CONSULT_DIGEST_LINK_TTL: at least 1h"))
	}
	if c.LinkKey != "" && len(c.LinkKey) < 32 {
		// Never echo the key.
		errs = append(errs, errors.New("CONSULT_LINK_KEY: at least 32 bytes (or unset, to keep a generated one in Redis)"))
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

// parseBytes reads a size as redis.conf writes it: a whole number of bytes,
// optionally with a unit, k/m/g for powers of 1000 and kb/mb/gb for powers of 1024,
// in any case.
func parseBytes(s string) (int64, error) {
	num := strings.ToLower(strings.TrimSpace(s))
	unit := int64(1)
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"k", 1e3}, {"m", 1e6}, {"g", 1e9}, {"b", 1}} {
		if strings.HasSuffix(num, u.suffix) {
			num, unit = strings.TrimSuffix(num, u.suffix), u.n
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || num[0] == '+' {
		return 0, fmt.Errorf("%q: want bytes or a size such as 512mb or 4gb", s)
	}
	if n > math.MaxInt64/unit {
		return 0, fmt.Errorf("%q: too large", s)
	}
	return n * unit, nil
}

// formatBytes writes a size for the log.
func formatBytes(n int64) string {
	switch {
	case n == 0:
		return "no limit"
	case n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "gb"
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + "gb"
	case n%(1<<20) == 0 || n >= 1<<20:
		return strconv.FormatInt(n>>20, 10) + "mb"
	}
	return strconv.FormatInt(n, 10) + "b"
}

// memoryLimit is the memory this process may use, in bytes: MemTotal from
// /proc/meminfo, or the memory cgroup's limit when that is lower (a container, a
// systemd MemoryMax=). root is the file system root, so that tests can give
// their own files.
func memoryLimit(root fs.FS) (int64, error) {
	b, err := fs.ReadFile(root, "proc/meminfo")
	if err != nil {
		return 0, err
	}
	var total int64
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "MemTotal:" && f[2] == "kB" {
			total, err = strconv.ParseInt(f[1], 10, 64)
			total *= 1024
		}
	}
	if total <= 0 || err != nil {
		return 0, errors.New("no MemTotal in /proc/meminfo")
	}
	// Where the cgroup file system is mounted with the process's own cgroup at
	// its root (a container), the limit is at the top; elsewhere it is under the
	// path /proc/self/cgroup names. Any limit found that is lower counts.
	limits := []string{"sys/fs/cgroup/memory.max", "sys/fs/cgroup/memory/memory.limit_in_bytes"}
	if cg, err := fs.ReadFile(root, "proc/self/cgroup"); err == nil {
		for line := range strings.Lines(string(cg)) {
			f := strings.SplitN(strings.TrimSpace(line), ":", 3)
			if len(f) != 3 || f[2] == "/" {
				continue
			}
			switch {
			case f[0] == "0" && f[1] == "":
				limits = append(limits, path.Join("sys/fs/cgroup", f[2], "memory.max"))
			case slices.Contains(strings.Split(f[1], ","), "memory"):
				limits = append(limits, path.Join("sys/fs/cgroup/memory", f[2], "memory.limit_in_bytes"))
			}
		}
	}
	for _, l := range limits {
		b, err := fs.ReadFile(root, l)
		if err != nil {
			continue
		}
		// "max" (cgroup v2) or a huge number (v1) means no limit; both fail or lose here.
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && n < total {
			total = n
		}
	}
	return total, nil
}
