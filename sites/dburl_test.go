package sites_test

import (
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/sites"
)

func TestParseDatabaseURL(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "data", "bare.sqlite3"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		raw  string
		want sites.DB
	}{
		{"postgres://user:secret@db.example:6543/app",
			sites.DB{Driver: sites.Postgres, User: "user", Password: "secret", Host: "db.example", Port: 6543, Database: "app", Params: url.Values{}}},
		{"postgresql://user@localhost/app?sslmode=disable&connect_timeout=5",
			sites.DB{Driver: sites.Postgres, User: "user", Host: "localhost", Database: "app",
				Params: url.Values{"sslmode": {"disable"}, "connect_timeout": {"5"}}}},
		{"pgsql://u:p@127.0.0.1:5432/db",
			sites.DB{Driver: sites.Postgres, User: "u", Password: "p", Host: "127.0.0.1", Port: 5432, Database: "db", Params: url.Values{}}},
		{"postgis://u:p@gis.example/geo",
			sites.DB{Driver: sites.Postgres, User: "u", Password: "p", Host: "gis.example", Database: "geo", Params: url.Values{}}},
		{"POSTGRES://u@h/d",
			sites.DB{Driver: sites.Postgres, User: "u", Host: "h", Database: "d", Params: url.Values{}}},
		// %-escapes in user, password, host and name; a raw '@' and '/' in
		// the password (the userinfo ends at the last '@').
		{"postgres://us%40er:p%3Ass%2Fw@h/my%20db",
			sites.DB{Driver: sites.Postgres, User: "us@er", Password: "p:ss/w", Host: "h", Database: "my db", Params: url.Values{}}},
		{"postgres://u:p@ss/w@h:1/d",
			sites.DB{Driver: sites.Postgres, User: "u", Password: "p@ss/w", Host: "h", Port: 1, Database: "d", Params: url.Values{}}},
		// A unix socket folder as the host.
		{"postgres://%2Fvar%2Frun%2Fpostgresql/app",
			sites.DB{Driver: sites.Postgres, Host: "/var/run/postgresql", Database: "app", Params: url.Values{}}},
		{"postgres://u@[::1]:5433/app",
			sites.DB{Driver: sites.Postgres, User: "u", Host: "::1", Port: 5433, Database: "app", Params: url.Values{}}},
		{"postgres:///app",
			sites.DB{Driver: sites.Postgres, Database: "app", Params: url.Values{}}},
		{"postgres://h/app?currentSchema=tenant1",
			sites.DB{Driver: sites.Postgres, Host: "h", Database: "app", Params: url.Values{"search_path": {"tenant1"}}}},
		{"  postgres://h/app\n", sites.DB{Driver: sites.Postgres, Host: "h", Database: "app", Params: url.Values{}}},

		// SQLite: relative to the project root, absolute, in memory.
		{"sqlite:///db.sqlite3", sites.DB{Driver: sites.SQLite, Path: filepath.Join(root, "db.sqlite3")}},
		{"sqlite:///data/db.sqlite3", sites.DB{Driver: sites.SQLite, Path: filepath.Join(root, "data", "db.sqlite3")}},
		{"sqlite:////abs/path/db.sqlite3", sites.DB{Driver: sites.SQLite, Path: "/abs/path/db.sqlite3"}},
		{"sqlite:////abs/my%20db.sqlite3", sites.DB{Driver: sites.SQLite, Path: "/abs/my db.sqlite3"}},
		{"sqlite://:memory:", sites.DB{Driver: sites.SQLite, Path: ":memory:"}},
		{"sqlite://", sites.DB{Driver: sites.SQLite, Path: ":memory:"}},
		{"spatialite:///geo.db", sites.DB{Driver: sites.SQLite, Path: filepath.Join(root, "geo.db")}},
		// A bare path to an existing SQLite file, relative to the root or absolute.
		{"data/bare.sqlite3", sites.DB{Driver: sites.SQLite, Path: filepath.Join(root, "data", "bare.sqlite3")}},
		{filepath.Join(root, "data", "bare.sqlite3"), sites.DB{Driver: sites.SQLite, Path: filepath.Join(root, "data", "bare.sqlite3")}},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := sites.ParseDatabaseURL(tt.raw, root)
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseDatabaseURLErrors(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"", "empty database URL"},
		{"postgres://u:hunter2@h:abc/db", `database URL postgres://u:xxxxx@h:abc/db: port "abc" is not a number from 1 to 65535`},
		{"postgres://u:hunter2@h:0/db", `database URL postgres://u:xxxxx@h:0/db: port "0" is not a number from 1 to 65535`},
		{"postgres://u:hunter2@h:5432", `database URL postgres://u:xxxxx@h:5432 names no database: add /<name> after the host`},
		{"postgres://u:hunter2@h:5432/", `database URL postgres://u:xxxxx@h:5432/ names no database: add /<name> after the host`},
		{"postgres://u:hun%zzter2@h/db", `database URL postgres://u:xxxxx@h/db: bad %-escape in the password`},
		{"postgres://u:hunter2@[::1/db", `database URL postgres://u:xxxxx@[::1/db: missing ']' after the IPv6 address`},
		{"postgres://u:hunter2@my host/db", `database URL postgres://u:xxxxx@my host/db: host "my host" contains ' '`},
		{"postgres://u:hunter2@h1:5432,h2:5432/db", `database URL postgres://u:xxxxx@h1:5432,h2:5432/db names several hosts: siteplex connects to one, so keep only the first`},
		{"oracle://u:hunter2@h/db", `database URL scheme "oracle" is not supported: siteplex reads PostgreSQL, MySQL/MariaDB and SQLite`},
		{"redis://h/0", `database URL scheme "redis" is unknown: use postgres://, mysql:// or sqlite://`},
		{"u:hunter2@h/db", `database URL "u:xxxxx@h/db" has no scheme and is not an existing file: use postgres://user:pass@host:port/name, mysql://user:pass@host:port/name or sqlite:///path`},
		{"missing.sqlite3", `database URL "missing.sqlite3" has no scheme and is not an existing file: use postgres://user:pass@host:port/name, mysql://user:pass@host:port/name or sqlite:///path`},
		{"sqlite://db.sqlite3", `database URL "sqlite://db.sqlite3": a SQLite URL is sqlite:///relative/path or sqlite:////absolute/path`},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) { checkParseError(t, tt.raw, t.TempDir(), tt.want) })
	}
}

// checkParseError fails unless parsing raw is a usage error saying want,
// without the test passwords hunter2 and hun%zzter2.
func checkParseError(t *testing.T, raw, root, want string) {
	t.Helper()
	_, err := sites.ParseDatabaseURL(raw, root)
	if err == nil {
		t.Fatal("no error")
	}
	if !sites.IsUsage(err) {
		t.Errorf("%v is not a usage error (exit 2)", err)
	}
	if err.Error() != want {
		t.Errorf("message\n got  %s\n want %s", err, want)
	}
	if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "hun%zzter2") {
		t.Errorf("message shows the password: %s", err)
	}
}

func TestDBDisplayAndConnString(t *testing.T) {
	d, err := sites.ParseDatabaseURL("postgres://app:s3cr%40t@db.example:6543/shop?sslmode=require", "/")
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Display(); got != "postgres db.example:6543/shop" {
		t.Errorf("Display = %q", got)
	}
	if got := d.ConnString(); got != "postgres://app:s3cr%40t@db.example:6543/shop?sslmode=require" {
		t.Errorf("ConnString = %q", got)
	}
	sock, _ := sites.ParseDatabaseURL("postgres://%2Frun%2Fpg:5433/shop", "/")
	if got := sock.ConnString(); got != "postgres:///shop?host=%2Frun%2Fpg&port=5433" {
		t.Errorf("socket ConnString = %q", got)
	}
	if got := sock.HostPort(); got != "/run/pg" {
		t.Errorf("socket HostPort = %q", got)
	}
	v6, _ := sites.ParseDatabaseURL("postgres://[::1]/shop", "/")
	if got := v6.HostPort(); got != "[::1]:5432" {
		t.Errorf("IPv6 HostPort = %q", got)
	}
	if got := sites.RedactURL("postgres://app:s3cr%40t@db/shop"); got != "postgres://app:xxxxx@db/shop" {
		t.Errorf("RedactURL = %q", got)
	}
	if got := sites.RedactURL("postgres://app@db/shop"); got != "postgres://app@db/shop" {
		t.Errorf("RedactURL without password = %q", got)
	}
}
