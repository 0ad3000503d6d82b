package sites

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Driver names a database engine siteplex can read.
type Driver string

const (
	Postgres Driver = "postgres"
	SQLite   Driver = "sqlite"
)

// DB describes a database to open. It never prints its password: String
// and Display redact it.
type DB struct {
	Driver Driver
	// Postgres.
	User, Password, Host, Database string
	Port                           int
	Params                         url.Values
	// SQLite: an absolute path, or ":memory:".
	Path string
	// Source says where the URL came from ("--db", "DATABASE_URL in .env-local", ...).
	Source string
}

// Display is a short, password-free description for people:
// "postgres 127.0.0.1:5432/db" or "sqlite db.sqlite3".
func (d DB) Display() string {
	if d.Driver == SQLite {
		return "sqlite " + d.Path
	}
	return fmt.Sprintf("postgres %s/%s", d.HostPort(), d.Database)
}

// HostPort is host:port for PostgreSQL (defaults localhost:5432).
func (d DB) HostPort() string {
	h := d.Host
	if h == "" {
		h = "localhost"
	}
	p := d.Port
	if p == 0 {
		p = 5432
	}
	if strings.HasPrefix(h, "/") {
		return h
	}
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.Itoa(p)
}

// ConnString is a libpq-style URL for pgx, password included. Never print it.
func (d DB) ConnString() string {
	u := url.URL{Scheme: "postgres", Path: "/" + d.Database}
	if d.User != "" || d.Password != "" {
		if d.Password != "" {
			u.User = url.UserPassword(d.User, d.Password)
		} else {
			u.User = url.User(d.User)
		}
	}
	q := url.Values{}
	for k, v := range d.Params {
		q[k] = v
	}
	if strings.HasPrefix(d.Host, "/") {
		q.Set("host", d.Host)
		if d.Port != 0 {
			q.Set("port", strconv.Itoa(d.Port))
		}
	} else {
		u.Host = d.HostPort()
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// ParseDatabaseURL parses a dj-database-url style URL: postgres://,
// postgresql://, pgsql://, postgis:// and sqlite:// forms, or a bare path to
// an existing SQLite file. Relative SQLite paths are resolved against root
// (where Django runs). Errors are *UsageError values that say what is wrong
// and never contain the password.
func ParseDatabaseURL(raw, root string) (DB, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return DB{}, Usagef("empty database URL")
	}
	scheme, _, hasScheme := strings.Cut(raw, "://")
	if !hasScheme {
		p := raw
		if !filepath.IsAbs(p) {
			p = filepath.Join(root, p)
		}
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return DB{Driver: SQLite, Path: p}, nil
		}
		return DB{}, Usagef("database URL %q has no scheme: use postgres://user:pass@host:port/name or sqlite:///path (or a path to an existing SQLite file)", raw)
	}
	switch strings.ToLower(scheme) {
	case "sqlite", "spatialite":
		rest := raw[len(scheme)+3:]
		if rest == ":memory:" || rest == "" || rest == "/" {
			return DB{Driver: SQLite, Path: ":memory:"}, nil
		}
		if i := strings.IndexByte(rest, '?'); i >= 0 {
			rest = rest[:i]
		}
		// sqlite:///relative → "/relative"; sqlite:////abs → "//abs".
		if !strings.HasPrefix(rest, "/") {
			return DB{}, Usagef("database URL %q: a SQLite URL is sqlite:///relative/path or sqlite:////absolute/path", raw)
		}
		p, err := url.PathUnescape(rest[1:])
		if err != nil {
			return DB{}, Usagef("database URL %q: bad escape in path", raw)
		}
		if p == ":memory:" {
			return DB{Driver: SQLite, Path: p}, nil
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(root, p)
		}
		return DB{Driver: SQLite, Path: p}, nil
	case "postgres", "postgresql", "pgsql", "postgis":
	case "mysql", "mysql2", "mysqlgis", "mysql-connector", "oracle", "oraclegis", "mssql", "mssqlms", "redshift", "cockroach", "timescale", "timescalegis":
		return DB{}, Usagef("database URL scheme %q is not supported: siteplex reads PostgreSQL and SQLite", scheme)
	default:
		return DB{}, Usagef("database URL scheme %q is unknown: use postgres:// or sqlite://", scheme)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return DB{}, Usagef("database URL is malformed: %s", redactURLError(err, raw))
	}
	d := DB{Driver: Postgres, Params: u.Query()}
	if u.User != nil {
		d.User = u.User.Username()
		d.Password, _ = u.User.Password()
	}
	d.Host = u.Hostname()
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return DB{}, Usagef("database URL: port %q is not a number from 1 to 65535", p)
		}
		d.Port = n
	}
	if h, err := url.PathUnescape(d.Host); err == nil {
		d.Host = h // %2Fvar%2Frun%2Fpostgresql = a socket folder
	}
	d.Database = strings.TrimPrefix(u.Path, "/")
	if d.Database == "" {
		return DB{}, Usagef("database URL for %s names no database: add /<name> after the host", d.HostPort())
	}
	if cs := d.Params.Get("currentSchema"); cs != "" {
		d.Params.Del("currentSchema")
		d.Params.Set("search_path", cs)
	}
	return d, nil
}

// redactURLError renders a url.Parse error without the URL (which may hold
// a password).
func redactURLError(err error, raw string) string {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err.Error()
	}
	return strings.ReplaceAll(err.Error(), raw, "<url>")
}
