package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sys/unix"

	"consult/accounts"
	"consult/store"
)

// The command line manages staff accounts against the same Redis that consultd
// serves from:
//
//	consultd user add NAME --role admin|bureau|reviewer [--bureau NAME]… [--password-stdin]
//	consultd user passwd NAME [--password-stdin]
//	consultd user disable NAME
//	consultd user list
//	consultd token create --user NAME --scope read|write --label TEXT
//	consultd token revoke ID
//	consultd token list [--user NAME]
//
// A password never comes as an argument, which every local user can read in
// ps: it is asked for on the terminal (twice, not echoed), or read as one line
// from standard input with --password-stdin.

const commandUsage = `usage:
  consultd user add NAME --role admin|bureau|reviewer [--bureau NAME]... [--password-stdin]
  consultd user passwd NAME [--password-stdin]
  consultd user disable NAME
  consultd user list
  consultd token create --user NAME --scope read|write --label TEXT
  consultd token revoke ID
  consultd token list [--user NAME]
`

// errUsage is a command line that names no command we have.
var errUsage = errors.New("unknown command\n" + commandUsage)

// terminal is where a command reads and writes: the process's own, or a
// test's.
type terminal struct {
	in       io.Reader
	out, err io.Writer
	// password asks for a password without echo; nil means there is no terminal.
	password func(prompt string) (string, error)
}

// runCommand runs one subcommand against Redis (see connectForCommand) and
// returns.
func runCommand(ctx context.Context, cfg Config, term terminal) error {
	args := cfg.Command
	if len(args) < 2 || (args[0] != "user" && args[0] != "token") {
		return errUsage
	}
	rdb, done, err := connectForCommand(ctx, cfg)
	if err != nil {
		return err
	}
	defer done()
	as, err := store.NewAccounts(rdb, store.AccountsConfig{})
	if err != nil {
		return err
	}
	c := &command{ctx: ctx, as: as, term: term, actor: consoleActor()}
	switch args[0] + " " + args[1] {
	case "user add":
		return c.userAdd(args[2:])
	case "user passwd":
		return c.userPasswd(args[2:])
	case "user disable":
		return c.userDisable(args[2:])
	case "user list":
		return c.userList(args[2:])
	case "token create":
		return c.tokenCreate(args[2:])
	case "token revoke":
		return c.tokenRevoke(args[2:])
	case "token list":
		return c.tokenList(args[2:])
	}
	return errUsage
}

// consoleActor is who the record puts a command line's changes down to: the
// operating-system user that ran it.
func consoleActor() accounts.Actor {
	name := os.Getenv("SUDO_USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	return accounts.ConsoleActor(consoleName(name))
}

// consoleName is an operating-system user's name as the record takes it:
// 1 to 128 bytes of [A-Za-z0-9._-]. A directory's names ("jdoe@corp.example",
// `CORP\jdoe`) have others, which become '_': the record must name the person
// at the console, and refusing to run for them would leave the change undone,
// not better recorded. No name at all is "unknown".
func consoleName(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	switch {
	case len(b) == 0:
		return "unknown"
	case len(b) > 128:
		b = b[:128]
	}
	return string(b)
}

type command struct {
	ctx   context.Context
	as    *store.Accounts
	term  terminal
	actor accounts.Actor
}

// parse reads flags wherever they stand among the positional arguments
// ("user add NAME --role admin" and "user add --role admin NAME"), and wants
// exactly npos positional ones.
func parse(fs *flag.FlagSet, args []string, npos int) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("%w\n%s", err, commandUsage)
		}
		if fs.NArg() == 0 {
			break
		}
		pos, args = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	if len(pos) != npos {
		return nil, fmt.Errorf("want %d argument(s), got %d\n%s", npos, len(pos), commandUsage)
	}
	return pos, nil
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// newPassword reads a new password: one line of standard input with
// --password-stdin, else twice from the terminal without echo.
func (c *command) newPassword(fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(c.term.in).ReadString('\n')
		if err != nil && (err != io.EOF || line == "") {
			return "", fmt.Errorf("read the password from standard input: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	if c.term.password == nil {
		return "", errors.New("no terminal to ask for the password on: pipe it in with --password-stdin")
	}
	pw, err := c.term.password("New password: ")
	if err != nil {
		return "", err
	}
	again, err := c.term.password("Again: ")
	if err != nil {
		return "", err
	}
	if pw != again {
		return "", errors.New("the two passwords differ")
	}
	return pw, nil
}

// explain turns a validation error into lines a person reads at a terminal.
func explain(err error) error {
	var ve *accounts.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	var b strings.Builder
	for f, p := range ve.Fields {
		fmt.Fprintf(&b, "\n  %s: %s", f, enMessage(p))
	}
	return errors.New("invalid:" + b.String())
}

// enMessage is a field problem in English, for the terminal.
func enMessage(p accounts.Problem) string {
	switch p.Key {
	case "err.user.name":
		return "a user name has 2 to 64 characters: a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
	case "err.user.bureau_required":
		return "a bureau user needs at least one --bureau"
	case "err.user.bureau_role":
		return "only bureau users belong to bureaus"
	case "err.user.role":
		return "--role is admin, bureau or reviewer"
	case "err.password.short":
		return fmt.Sprintf("at least %d characters; this has %d", p.Args...)
	case "err.password.long":
		return fmt.Sprintf("at most %d bytes", p.Args...)
	case "err.password.name":
		return "the password must not be the user name"
	case "err.token.scope":
		return "--scope is read or write"
	case "err.token.label":
		return "--label says what the token is for"
	case "err.bureau.required":
		return "a bureau needs a name"
	case "err.utf8":
		return "not valid UTF-8"
	case "err.too_long":
		return fmt.Sprintf("at most %d characters; this has %d", p.Args...)
	}
	return p.Key
}

func (c *command) userAdd(args []string) error {
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	role := fs.String("role", "", "admin, bureau or reviewer")
	var bureaus stringList
	fs.Var(&bureaus, "bureau", "a bureau the user belongs to, by its name as drafts name it (repeat for more); made if new")
	stdin := fs.Bool("password-stdin", false, "read the password as one line of standard input")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	u := accounts.User{Name: pos[0], Role: accounts.Role(*role)}
	// Checked before asking for a password, and before any bureau is made.
	u.Name = accounts.NormalizeName(u.Name)
	probe := u
	probe.Bureaus = bureaus
	if err := probe.Validate(); err != nil {
		return explain(err)
	}
	pw, err := c.newPassword(*stdin)
	if err != nil {
		return err
	}
	if err := accounts.ValidatePassword(u.Name, pw); err != nil {
		return explain(err)
	}
	for _, name := range bureaus {
		b, err := c.as.EnsureBureau(c.ctx, c.actor, name)
		if err != nil {
			return explain(err)
		}
		u.Bureaus = append(u.Bureaus, b.ID)
	}
	if u, err = c.as.CreateUser(c.ctx, c.actor, u, pw); err != nil {
		if errors.Is(err, accounts.ErrExists) {
			return fmt.Errorf("a user named %s exists", pos[0])
		}
		return explain(err)
	}
	fmt.Fprintf(c.term.out, "user %s added (%s)\n", u.Name, u.Role)
	return nil
}

func (c *command) userPasswd(args []string) error {
	fs := flag.NewFlagSet("user passwd", flag.ContinueOnError)
	stdin := fs.Bool("password-stdin", false, "read the password as one line of standard input")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	if _, err := c.as.User(c.ctx, pos[0]); err != nil {
		return notFound(err, "user", pos[0])
	}
	pw, err := c.newPassword(*stdin)
	if err != nil {
		return err
	}
	if err := c.as.SetPassword(c.ctx, c.actor, pos[0], pw); err != nil {
		return notFound(explain(err), "user", pos[0])
	}
	fmt.Fprintf(c.term.out, "password of %s changed; every session of the user has ended\n", accounts.NormalizeName(pos[0]))
	return nil
}

func (c *command) userDisable(args []string) error {
	pos, err := parse(flag.NewFlagSet("user disable", flag.ContinueOnError), args, 1)
	if err != nil {
		return err
	}
	if err := c.as.Disable(c.ctx, c.actor, pos[0]); err != nil {
		return notFound(err, "user", pos[0])
	}
	fmt.Fprintf(c.term.out, "user %s disabled; every session has ended and every token stopped\n", accounts.NormalizeName(pos[0]))
	return nil
}

func notFound(err error, what, name string) error {
	if errors.Is(err, accounts.ErrNotFound) {
		return fmt.Errorf("no %s %s", what, name)
	}
	return err
}

func (c *command) userList(args []string) error {
	if _, err := parse(flag.NewFlagSet("user list", flag.ContinueOnError), args, 0); err != nil {
		return err
	}
	us, err := c.as.Users(c.ctx)
	if err != nil {
		return err
	}
	bs, err := c.as.Bureaus(c.ctx)
	if err != nil {
		return err
	}
	names := map[string]string{}
	for _, b := range bs {
		names[b.ID] = b.Name
	}
	w := tabwriter.NewWriter(c.term.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tROLE\tSTATUS\tCREATED\tBUREAUS")
	for _, u := range us {
		status := "active"
		if u.Disabled {
			status = "disabled"
		}
		var bn []string
		for _, id := range u.Bureaus {
			bn = append(bn, names[id])
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", u.Name, u.Role, status, u.CreatedAt.Format(time.DateOnly), strings.Join(bn, "; "))
	}
	return w.Flush()
}

func (c *command) tokenCreate(args []string) error {
	fs := flag.NewFlagSet("token create", flag.ContinueOnError)
	name := fs.String("user", "", "the user the token acts for")
	scope := fs.String("scope", "", "read or write")
	label := fs.String("label", "", "what the token is for")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	_, secret, err := c.as.CreateToken(c.ctx, c.actor, *name, accounts.Scope(*scope), *label)
	switch {
	case errors.Is(err, accounts.ErrDisabled):
		return fmt.Errorf("user %s is disabled", *name)
	case err != nil:
		return notFound(explain(err), "user", *name)
	}
	// The token alone on standard output, so that a script can take it; what
	// to do with it on standard error.
	fmt.Fprintln(c.term.err, "token made; it is shown only this once:")
	fmt.Fprintln(c.term.out, secret)
	return nil
}

func (c *command) tokenRevoke(args []string) error {
	pos, err := parse(flag.NewFlagSet("token revoke", flag.ContinueOnError), args, 1)
	if err != nil {
		return err
	}
	if err := c.as.RevokeToken(c.ctx, c.actor, pos[0], ""); err != nil {
		return notFound(err, "token", pos[0])
	}
	fmt.Fprintf(c.term.out, "token %s revoked\n", pos[0])
	return nil
}

func (c *command) tokenList(args []string) error {
	fs := flag.NewFlagSet("token list", flag.ContinueOnError)
	name := fs.String("user", "", "only this user's tokens")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	ts, err := c.as.Tokens(c.ctx, *name)
	if err != nil {
		return notFound(err, "user", *name)
	}
	w := tabwriter.NewWriter(c.term.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tUSER\tSCOPE\tCREATED\tLAST USED\tREVOKED\tLABEL")
	day := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Format(time.DateTime)
	}
	for _, t := range ts {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.User, t.Scope, day(t.CreatedAt), day(t.LastUsedAt), day(t.RevokedAt), t.Label)
	}
	return w.Flush()
}

// connectForCommand connects a command to consultd's Redis. With REDIS_URL,
// that server. With the embedded default, the data directory's lock decides
// (see lockDataDir): while consultd serves, it holds the lock and the command
// talks to its redis-server, at the address it wrote to DATA_DIR/redis-addr
// with the password in DATA_DIR/redis-password; while it does not, the command
// takes the lock and starts the embedded redis-server on DATA_DIR itself for as
// long as it runs, then stops it cleanly (its append-only file complete). Two
// redis-servers never run on the same files, and a command never waits for
// consultd to be started.
func connectForCommand(ctx context.Context, cfg Config) (redis.UniversalClient, func(), error) {
	if cfg.RedisURL != "" {
		rdb, err := newRedisClient(cfg.RedisURL, 4)
		if err != nil {
			return nil, nil, err
		}
		return rdb, func() { rdb.Close() }, nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("data dir: %w", err)
	}
	lock, err := lockDataDir(cfg.DataDir, 0)
	if errors.Is(err, errLocked) {
		// consultd is serving: use its redis-server.
		addr, err := os.ReadFile(filepath.Join(cfg.DataDir, "redis-addr"))
		if err != nil {
			return nil, nil, fmt.Errorf("consultd holds %s but its redis-addr is not readable: %w", cfg.DataDir, err)
		}
		pw, err := redisPassword(filepath.Join(cfg.DataDir, "redis-password"))
		if err != nil {
			return nil, nil, err
		}
		rdb := redis.NewClient(withTimeouts(&redis.Options{Addr: strings.TrimSpace(string(addr)), Password: pw, PoolSize: 4}))
		if err := rdb.Ping(ctx).Err(); err != nil {
			rdb.Close()
			return nil, nil, fmt.Errorf("consultd's redis-server at %s: %w", strings.TrimSpace(string(addr)), err)
		}
		return rdb, func() { rdb.Close() }, nil
	}
	if err != nil {
		return nil, nil, err
	}
	// A redis-server started by another user (root, say, for a data directory
	// of systemd's DynamicUser) would leave files its consultd cannot write.
	if fi, err := os.Stat(cfg.DataDir); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
			lock.Close()
			return nil, nil, fmt.Errorf("%s belongs to uid %d, not to this user (uid %d), and consultd is not running: "+
				"run the command while consultd serves, or as the user that owns the directory", cfg.DataDir, st.Uid, os.Geteuid())
		}
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	emb, err := startEmbedded(ctx, cfg, quiet)
	if err != nil {
		lock.Close()
		return nil, nil, err
	}
	rdb := redis.NewClient(withTimeouts(emb.ClientOptions(4)))
	return rdb, func() {
		rdb.Close()
		emb.Stop()
		lock.Close()
	}, nil
}

// errLocked: another process holds the data directory.
var errLocked = errors.New("the data directory is in use by another consultd")

// lockDataDir takes DATA_DIR/consultd.lock (flock, released by the kernel when
// the process ends, however it ends): whoever holds it runs the embedded
// redis-server on DATA_DIR. It tries until wait has passed (zero: once) and
// then returns errLocked.
func lockDataDir(dir string, wait time.Duration) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "consultd.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock data dir: %w", err)
		}
		if !time.Now().Before(deadline) {
			f.Close()
			return nil, errLocked
		}
		time.Sleep(100 * time.Millisecond) // a command holds it for a second or two
	}
}

// ttyPassword asks for a password on the controlling terminal with echo off.
func ttyPassword(prompt string) (string, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", errors.New("no terminal to ask for the password on: pipe it in with --password-stdin")
	}
	defer tty.Close()
	fd := int(tty.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", errors.New("no terminal to ask for the password on: pipe it in with --password-stdin")
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return "", fmt.Errorf("terminal: %w", err)
	}
	defer func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }()
	fmt.Fprint(tty, prompt)
	line, err := bufio.NewReader(tty).ReadString('\n')
	fmt.Fprintln(tty)
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
