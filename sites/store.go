package sites

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Tables says which of the known tables exist.
type Tables struct {
	Site, Alias, Plus bool
}

// Store reads sites from one database. Every engine goes through
// database/sql (pgx's stdlib adapter for PostgreSQL, go-sql-driver/mysql
// for MySQL and MariaDB), so every query is written once; what differs is
// in Dialect.
type Store struct {
	db  *sql.DB
	cfg DB
}

// DB returns the description the store was opened with.
func (s *Store) Info() DB { return s.cfg }

// SQL exposes the handle for packages that write (domains rewrite).
func (s *Store) SQL() *sql.DB { return s.db }

// Open connects to d and checks that it answers. SQLite is opened
// read-only unless writable is true. Errors say what failed and how to fix
// it, and never contain the password.
func Open(ctx context.Context, d DB, writable bool) (*Store, error) {
	switch d.Driver {
	case SQLite:
		return openSQLite(ctx, d, writable)
	case Postgres:
		return openPostgres(ctx, d)
	case MySQL:
		return openMySQL(ctx, d)
	}
	return nil, fmt.Errorf("unsupported database driver %q", d.Driver)
}

func openSQLite(ctx context.Context, d DB, writable bool) (*Store, error) {
	if d.Path != ":memory:" {
		st, err := os.Stat(d.Path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("SQLite database %s does not exist%s: run `manage.py migrate`, or point siteplex at another database with --db", d.Path, from(d))
		}
		if err != nil {
			return nil, fmt.Errorf("cannot read SQLite database %s%s: %w", d.Path, from(d), errors.Unwrap(err))
		}
		if st.IsDir() {
			return nil, fmt.Errorf("SQLite database %s is a folder, not a file", d.Path)
		}
	}
	mode := "ro"
	if writable {
		mode = "rw"
	}
	dsn := "file:" + (&url.URL{Path: d.Path}).EscapedPath() + "?mode=" + mode + "&_pragma=busy_timeout(2000)"
	if d.Path == ":memory:" {
		dsn = ":memory:"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening SQLite database %s: %w", d.Path, err)
	}
	db.SetMaxOpenConns(1)
	s := &Store{db: db, cfg: d}
	if _, err := s.Tables(ctx); err != nil {
		db.Close()
		if j, hot := HotJournal(d); hot && !writable {
			// Never suggest deleting it (see hotjournal.go).
			return nil, &HotJournalError{Path: d.Path, Journal: j, Err: err}
		}
		return nil, err
	}
	return s, nil
}

func openPostgres(ctx context.Context, d DB) (*Store, error) {
	cc, err := pgx.ParseConfig(d.ConnString())
	if err != nil {
		return nil, Usagef("database URL for %s%s: %s", d.HostPort(), from(d), scrub(err.Error(), d))
	}
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = 10 * time.Second
	}
	// What the server sends first tells a MySQL server from PostgreSQL
	// (protocol.go).
	fb := &firstBytes{}
	dial := cc.DialFunc
	cc.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return fb.conn(c), nil
	}
	db := stdlib.OpenDB(*cc)
	db.SetMaxOpenConns(4)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		if v, ok := fb.mysqlServer(); ok {
			return nil, &WrongProtocolError{Driver: Postgres, Addr: d.HostPort(), Source: d.Source, Server: v}
		}
		return nil, pgError(err, d)
	}
	return &Store{db: db, cfg: d}, nil
}

// from names where the URL came from, for messages: " (from --db)".
func from(d DB) string {
	if d.Source == "" {
		return ""
	}
	return " (from " + d.Source + ")"
}

// pgError turns a connection error into a message a user can act on.
func pgError(err error, d DB) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "28P01", "28000":
			return fmt.Errorf("PostgreSQL at %s refused user %q: authentication failed; check the user and password in the database URL%s", d.HostPort(), d.User, from(d))
		case "3D000":
			return fmt.Errorf("PostgreSQL at %s has no database %q: create it, or fix the name in the database URL%s", d.HostPort(), d.Database, from(d))
		}
		return fmt.Errorf("PostgreSQL at %s: %s (SQLSTATE %s)", d.HostPort(), scrub(pe.Message, d), pe.Code)
	}
	if errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "connection refused") {
		return fmt.Errorf("cannot connect to PostgreSQL at %s%s: connection refused; is the server running? Point siteplex elsewhere with --db URL or DATABASE_URL in the env file", d.HostPort(), from(d))
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Errorf("cannot connect to PostgreSQL at %s%s: host %q does not resolve; point siteplex elsewhere with --db URL", d.HostPort(), from(d), d.Host)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "timeout") {
		return fmt.Errorf("cannot connect to PostgreSQL at %s%s: timed out; is the server running and reachable? Point siteplex elsewhere with --db URL", d.HostPort(), from(d))
	}
	// pgx formats some protocol errors with a nil cause: "%!w(<nil>)".
	msg := strings.ReplaceAll(scrub(err.Error(), d), ": %!w(<nil>)", "")
	return fmt.Errorf("cannot connect to PostgreSQL at %s%s: %s", d.HostPort(), from(d), msg)
}

// scrub removes the password from a message, in case a driver echoed it.
func scrub(msg string, d DB) string {
	if d.Password != "" {
		msg = strings.ReplaceAll(msg, d.Password, "xxxxx")
		msg = strings.ReplaceAll(msg, url.QueryEscape(d.Password), "xxxxx")
	}
	return msg
}

// sqliteError explains SQLite failures.
func (s *Store) sqliteError(err error) error {
	m := err.Error()
	switch {
	case strings.Contains(m, "not a database"):
		return fmt.Errorf("%s is not a SQLite database: point siteplex at the right file with --db sqlite:////path/to/db.sqlite3", s.cfg.Path)
	case strings.Contains(m, "database is locked") || strings.Contains(m, "SQLITE_BUSY"):
		return fmt.Errorf("SQLite database %s is locked by another process (a running migrate or shell?): try again when it finishes", s.cfg.Path)
	case strings.Contains(m, "unable to open"):
		return fmt.Errorf("cannot open SQLite database %s: check that the file and its folder are readable", s.cfg.Path)
	}
	return fmt.Errorf("SQLite database %s: %w", s.cfg.Path, err)
}

func (s *Store) wrap(err error) error {
	switch s.cfg.Driver {
	case SQLite:
		return s.sqliteError(err)
	case MySQL:
		return mysqlError(err, s.cfg)
	}
	return pgError(err, s.cfg)
}

// Close closes the connection.
func (s *Store) Close() error { return s.db.Close() }

// Tables detects django_site, multisite_alias and django_multisite_plus_site.
func (s *Store) Tables(ctx context.Context) (Tables, error) {
	t, err := s.siteTablesIn(ctx)
	return t.Tables, err
}

// NoSiteTableError is returned when the database lacks the table the
// project's sites come from.
type NoSiteTableError struct {
	DB string
	// Table is the missing table ("" = django_site); Hint says what to do
	// ("" = run `manage.py migrate`).
	Table, Hint string
}

func (e *NoSiteTableError) Error() string {
	table, hint := e.Table, e.Hint
	if table == "" {
		table = "django_site"
	}
	if hint == "" {
		hint = "run `manage.py migrate`"
	}
	return fmt.Sprintf("no %s table in %s: %s", table, e.DB, hint)
}

// Sites reads every site of the source the tables point at (see
// SitesFrom). The result is raw: call Finalize (or use LoadSites) for
// slugs, local domains and problems.
func (s *Store) Sites(ctx context.Context) ([]Site, error) {
	list, _, err := s.SitesFrom(ctx, nil)
	return list, err
}

// djangoSites reads every django_site row with its multisite-plus row and
// aliases, given the tables that exist.
func (s *Store) djangoSites(ctx context.Context, t Tables) ([]Site, error) {
	q := `SELECT s.id, s.domain, s.name, NULL, NULL, NULL, NULL FROM django_site s ORDER BY s.id`
	if t.Plus {
		q = `SELECT s.id, s.domain, s.name, m.site_id, m.slug, m.real_domain, m.is_enabled
FROM django_site s LEFT JOIN django_multisite_plus_site m ON m.site_id = s.id ORDER BY s.id`
	}
	// Size the list up front: growing a slice of 10,000 Sites by doubling
	// costs more than this query. A stale count is harmless.
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM django_site`).Scan(&n); err != nil {
		return nil, s.wrap(err)
	}
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	list := make([]Site, 0, n)
	reals := make([]string, 0, n) // backing store of the RealDomain pointers
	var (
		id         int64
		domain     string
		name       string
		plusID     sql.NullInt64
		slug, real sql.NullString
		enabled    sql.NullBool
	)
	for rows.Next() {
		if err := rows.Scan(&id, &domain, &name, &plusID, &slug, &real, &enabled); err != nil {
			return nil, s.wrap(err)
		}
		st := Site{ID: id, Domain: domain, Name: name, Enabled: true, Origin: Origin{Source: SourceDjangoSite}}
		if plusID.Valid {
			st.PlusRow = true
			st.PlusSlug = slug.String
			// If reals ever regrows, earlier pointers keep the old array alive.
			reals = append(reals, real.String)
			st.RealDomain = &reals[len(reals)-1]
			st.Enabled = !enabled.Valid || enabled.Bool
		}
		list = append(list, st)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(err)
	}
	rows.Close()
	if !t.Alias {
		return list, nil
	}
	// Unordered: the aliases are sorted below, cheaper than in SQL.
	arows, err := s.db.QueryContext(ctx, `SELECT a.site_id, a.domain, a.is_canonical FROM multisite_alias a`)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer arows.Close()
	byID := make(map[int64]int, len(list))
	for i := range list {
		byID[list[i].ID] = i
	}
	type aliasRow struct {
		site   int // index in list
		domain string
	}
	all := make([]aliasRow, 0, len(list)+len(list)/2)
	perSite := make([]int, len(list))
	var canon sql.NullBool
	for arows.Next() {
		if err := arows.Scan(&id, &domain, &canon); err != nil {
			return nil, s.wrap(err)
		}
		i, ok := byID[id]
		if !ok {
			continue
		}
		all = append(all, aliasRow{i, domain})
		perSite[i]++
		if canon.Valid && canon.Bool {
			list[i].CanonicalAlias = domain
		}
	}
	if err := arows.Err(); err != nil {
		return nil, s.wrap(err)
	}
	// One backing array for every site's aliases; each site gets a slice
	// of it whose capacity ends at its own part, so an append elsewhere
	// (siteplex.toml aliases) copies instead of overwriting a neighbour.
	backing := make([]string, len(all))
	start := 0
	for i, c := range perSite {
		if c > 0 {
			list[i].Aliases = backing[start : start : start+c]
			start += c
		}
	}
	for _, a := range all {
		list[a.site].Aliases = append(list[a.site].Aliases, a.domain)
	}
	// Order aliases here, not by the database's collation (which differs
	// between engines and locales): the canonical one first, then bytewise.
	for i := range list {
		st := &list[i]
		if len(st.Aliases) < 2 {
			continue
		}
		slices.SortFunc(st.Aliases, func(a, b string) int {
			if (a == st.CanonicalAlias) != (b == st.CanonicalAlias) {
				if a == st.CanonicalAlias {
					return -1
				}
				return 1
			}
			return strings.Compare(a, b)
		})
	}
	return list, nil
}
