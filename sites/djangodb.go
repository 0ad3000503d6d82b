package sites

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DBFromDjango builds the database of a settings.DATABASES entry as
// Django's introspection reports it: ENGINE, NAME, HOST, PORT, USER,
// PASSWORD and OPTIONS (the decoded JSON object; nil when absent). root is
// the project root, where Django runs: a relative SQLite NAME, socket or
// option file is relative to it.
//
// ENGINE decides the driver: PostgreSQL for django.db.backends.postgresql
// (and postgresql_psycopg2), PostGIS, django_tenants.postgresql_backend,
// django_pgschemas.postgresql_backend and other wrappers whose name says
// postgresql or postgis; SQLite for sqlite3 and spatialite; MySQL for
// django.db.backends.mysql, its GIS backend and mysql.connector.django.
// Anything else is a *UsageError naming the engine. Messages never hold
// the password. The caller sets Source.
func DBFromDjango(engine, name, host, port, user, password string, options map[string]any, root string) (DB, error) {
	driver, err := engineDriver(engine)
	if err != nil {
		return DB{}, err
	}
	opts, err := flattenOptions(options)
	if err != nil {
		return DB{}, Usagef("DATABASES OPTIONS of ENGINE %q: %v", engine, err)
	}
	if driver == SQLite {
		switch {
		case name == "":
			return DB{}, Usagef("DATABASES: ENGINE %q has an empty NAME: set NAME to the database file", engine)
		case name == ":memory:" || strings.HasPrefix(name, "file::memory:"):
			return DB{Driver: SQLite, Path: ":memory:"}, nil
		}
		p := strings.TrimPrefix(name, "file:") // a URI filename (OPTIONS uri=True)
		if i := strings.IndexByte(p, '?'); i >= 0 && strings.HasPrefix(name, "file:") {
			p = p[:i]
		}
		return DB{Driver: SQLite, Path: absUnder(root, filepath.Clean(p))}, nil
	}
	d := DB{Driver: driver, User: user, Password: password, Host: host, Database: name}
	if port = strings.TrimSpace(port); port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n <= 0 || n > 65535 {
			return DB{}, Usagef("DATABASES: PORT %q is not a number from 1 to 65535", port)
		}
		d.Port = n
	}
	where := fmt.Sprintf("DATABASES (ENGINE %s)", engine)
	if driver == MySQL {
		if strings.HasPrefix(host, "/") {
			d.Host = host // Django: a HOST starting with '/' is the socket
		}
		if err := applyMySQLOptions(&d, opts, root, where); err != nil {
			return DB{}, err
		}
		if d.Database == "" {
			return DB{}, Usagef("%s: NAME is empty: set it to the database's name", where)
		}
		return d, nil
	}
	// PostgreSQL: OPTIONS are libpq connection parameters, except the
	// ones Django itself consumes.
	d.Params = map[string][]string{}
	for k, v := range opts {
		switch k {
		case "isolation_level", "server_side_binding", "pool", "cursor_factory", "assume_role", "context":
		case "service":
			return DB{}, Usagef("%s: OPTIONS service %q (pg_service.conf) is not supported by siteplex: give HOST, PORT, USER and NAME", where, v)
		default:
			d.Params.Set(k, v)
		}
	}
	if d.Database == "" {
		return DB{}, Usagef("%s: NAME is empty: set it to the database's name", where)
	}
	if d.Host == "" {
		d.Host = defaultPGSocketDir(d.Port)
	}
	return d, nil
}

// engineDriver maps a Django ENGINE to the driver that reads it.
func engineDriver(engine string) (Driver, error) {
	e := strings.ToLower(engine)
	last := e[strings.LastIndexByte(e, '.')+1:]
	switch {
	case e == "":
		return "", Usagef("DATABASES has no ENGINE: Django has no database configured")
	case e == "django.db.backends.dummy":
		return "", Usagef("DATABASES is empty (ENGINE django.db.backends.dummy): Django has no database configured")
	case strings.Contains(e, "postgres") || strings.Contains(last, "postgis"):
		return Postgres, nil
	case strings.Contains(last, "sqlite") || strings.Contains(last, "spatialite"):
		return SQLite, nil
	case strings.Contains(e, "mysql"):
		return MySQL, nil
	}
	return "", Usagef("DATABASES: ENGINE %q is not supported: siteplex reads PostgreSQL, MySQL/MariaDB and SQLite", engine)
}

// flattenOptions turns decoded JSON OPTIONS into strings: numbers without
// a fraction as integers, booleans as true/false, and MySQL's ssl object
// as ssl-ca, ssl-cert, ssl-key (other ssl keys are refused: siteplex
// cannot honour them).
func flattenOptions(options map[string]any) (map[string]string, error) {
	out := make(map[string]string, len(options))
	for k, v := range options {
		if k == "ssl" {
			m, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("ssl is %T, not an object", v)
			}
			for sk, sv := range m {
				s, err := optionString(sv)
				if err != nil {
					return nil, fmt.Errorf("ssl %s: %v", sk, err)
				}
				switch sk {
				case "ca", "cert", "key":
					out["ssl-"+sk] = s
				case "check_hostname":
					if s == "true" {
						out["ssl_mode"] = "VERIFY_IDENTITY"
					}
				default:
					out["ssl-"+sk] = s // refused by applyMySQLOptions if it matters
				}
			}
			continue
		}
		if k == "option_files" || k == "option_groups" {
			if l, ok := v.([]any); ok {
				if len(l) != 1 {
					return nil, fmt.Errorf("%s lists %d entries: siteplex reads one", k, len(l))
				}
				v = l[0]
			}
		}
		s, err := optionString(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", k, err)
		}
		out[k] = s
	}
	return out, nil
}

func optionString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		if x == float64(int64(x)) {
			return strconv.FormatInt(int64(x), 10), nil
		}
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case nil:
		return "", nil
	}
	return "", fmt.Errorf("a %T, not a string, number or boolean", v)
}

// defaultPGSocketDir is where libpq (psycopg2) connects when HOST is
// empty: the first of the usual socket folders holding the server's
// socket, else "" (siteplex then uses localhost over TCP).
func defaultPGSocketDir(port int) string {
	if port == 0 {
		port = 5432
	}
	for _, dir := range []string{"/var/run/postgresql", "/run/postgresql", "/tmp"} {
		if st, err := os.Stat(filepath.Join(dir, ".s.PGSQL."+strconv.Itoa(port))); err == nil && st.Mode()&os.ModeSocket != 0 {
			return dir
		}
	}
	return ""
}
