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
	// MySQL is MySQL and MariaDB (go-sql-driver/mysql); see dburl_mysql.go.
	MySQL Driver = "mysql"
)

// DB describes a database to open. It never prints its password: String
// and Display redact it.
type DB struct {
	Driver Driver
	// PostgreSQL and MySQL. Host is a name, an address, or the path of a
	// unix socket (a folder for PostgreSQL, the socket file for MySQL).
	User, Password, Host, Database string
	Port                           int
	// Params are libpq parameters (PostgreSQL) or the connection options
	// siteplex honours (MySQL: unix_socket, ssl_mode, ssl-ca, ssl-cert,
	// ssl-key, connect_timeout).
	Params url.Values
	// SQLite: an absolute path, or ":memory:".
	Path string
	// Source says where the URL came from ("--db", "DATABASE_URL in .env-local", ...).
	Source string
	// Note is a fact about the choice that people must see, on stderr and
	// in doctor: today, that a DATABASE_URL was set aside because the
	// project's settings use another database (docs/sites.md). "" when
	// there is nothing to say.
	Note string
}

// Display is a short, password-free description for people:
// "postgres 127.0.0.1:5432/db", "mysql 127.0.0.1:3306/db" or
// "sqlite db.sqlite3".
func (d DB) Display() string {
	if d.Driver == SQLite {
		return "sqlite " + d.Path
	}
	return fmt.Sprintf("%s %s/%s", d.Driver, d.HostPort(), d.Database)
}

// HostPort is host:port for PostgreSQL (default localhost:5432) and MySQL
// (default localhost:3306), or the socket's path.
func (d DB) HostPort() string {
	h := d.Host
	if h == "" {
		h = "localhost"
	}
	p := d.Port
	if p == 0 {
		p = d.defaultPort()
	}
	if strings.HasPrefix(h, "/") {
		return h
	}
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.Itoa(p)
}

func (d DB) defaultPort() int {
	if d.Driver == MySQL {
		return 3306
	}
	return 5432
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

// DatabaseURLForms is the short list of database URL forms for help texts
// and messages.
const DatabaseURLForms = "postgres://user:pass@host:port/name, mysql://user:pass@host:port/name or sqlite:///path"

// ParseDatabaseURL parses a dj-database-url style URL: postgres://,
// postgresql://, pgsql://, postgis://, mysql://, mysql2://, mysqlgis://,
// mysql-connector:// and sqlite:// forms, or a bare path to an existing
// SQLite file (docs/sites.md lists them). Relative SQLite paths are resolved against root
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
		return DB{}, Usagef("database URL %q has no scheme and is not an existing file: use %s", RedactURL(raw), DatabaseURLForms)
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
		d, err := parseServerURL(raw, raw[len(scheme)+3:], Postgres)
		if err != nil {
			return DB{}, err
		}
		if cs := d.Params.Get("currentSchema"); cs != "" {
			d.Params.Del("currentSchema")
			d.Params.Set("search_path", cs)
		}
		return d, nil
	case "mysql", "mysql2", "mysqlgis", "mysql-connector":
		return parseMySQLURL(raw, raw[len(scheme)+3:], root)
	case "oracle", "oraclegis", "mssql", "mssqlms", "redshift", "cockroach", "timescale", "timescalegis", "mongodb", "mongodb+srv":
		return DB{}, Usagef("database URL scheme %q is not supported: siteplex reads PostgreSQL, MySQL/MariaDB and SQLite", scheme)
	default:
		return DB{}, Usagef("database URL scheme %q is unknown: use postgres://, mysql:// or sqlite://", scheme)
	}
}

// parseServerURL parses the part after "scheme://" of a PostgreSQL or
// MySQL URL the way dj-database-url does (user, password, host and name are
// %-unescaped, so postgres://%2Fvar%2Frun%2Fpostgresql/db names a socket
// folder and mysql://%2Frun%2Fmysqld%2Fmysqld.sock/db a socket). The
// userinfo ends at the last '@', so a password may hold '/', '?' or '#'
// unescaped. Messages never contain the password.
func parseServerURL(raw, rest string, driver Driver) (DB, error) {
	d := DB{Driver: driver, Params: url.Values{}}
	shown := RedactURL(raw)
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		userinfo := rest[:at]
		rest = rest[at+1:]
		user, pass, hasPass := strings.Cut(userinfo, ":")
		var err error
		if d.User, err = url.PathUnescape(user); err != nil {
			return DB{}, Usagef("database URL %s: bad %%-escape in the user name", shown)
		}
		if hasPass {
			if d.Password, err = url.PathUnescape(pass); err != nil {
				return DB{}, Usagef("database URL %s: bad %%-escape in the password", shown)
			}
		}
	}
	query := ""
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest, query = rest[:i], rest[i+1:]
	}
	hostport, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		hostport, path = rest[:i], rest[i+1:]
	}
	if strings.Contains(hostport, ",") {
		return DB{}, Usagef("database URL %s names several hosts: siteplex connects to one, so keep only the first", shown)
	}
	host, port := hostport, ""
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return DB{}, Usagef("database URL %s: missing ']' after the IPv6 address", shown)
		}
		host, port = hostport[1:end], hostport[end+1:]
		if port != "" && !strings.HasPrefix(port, ":") {
			return DB{}, Usagef("database URL %s: unexpected %q after the IPv6 address", shown, port)
		}
		port = strings.TrimPrefix(port, ":")
	} else if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
		host, port = hostport[:i], hostport[i+1:]
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n <= 0 || n > 65535 {
			return DB{}, Usagef("database URL %s: port %q is not a number from 1 to 65535", shown, port)
		}
		d.Port = n
	}
	h, err := url.PathUnescape(host)
	if err != nil {
		return DB{}, Usagef("database URL %s: bad %%-escape in the host", shown)
	}
	for _, r := range h {
		if r <= ' ' || r == 0x7f || strings.ContainsRune("@?#,", r) {
			return DB{}, Usagef("database URL %s: host %q contains %q", shown, h, r)
		}
	}
	d.Host = h
	if d.Database, err = url.PathUnescape(path); err != nil {
		return DB{}, Usagef("database URL %s: bad %%-escape in the database name", shown)
	}
	if d.Database == "" && driver == Postgres {
		return DB{}, Usagef("database URL %s names no database: add /<name> after the host", shown)
	}
	if query != "" {
		if d.Params, err = url.ParseQuery(query); err != nil {
			return DB{}, Usagef("database URL %s: bad query string: %v", shown, err)
		}
	}
	return d, nil
}

// RedactURL returns raw with the password, if any, replaced by "xxxxx":
// "postgres://u:xxxxx@h/db". Use it whenever a URL is shown.
func RedactURL(raw string) string {
	rest, prefix := raw, ""
	if i := strings.Index(raw, "://"); i >= 0 {
		prefix, rest = raw[:i+3], raw[i+3:]
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return raw
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return raw
	}
	return prefix + user + ":xxxxx" + rest[at:]
}
