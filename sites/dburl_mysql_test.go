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

// TestParseMySQLURL covers every form dj-database-url accepts for MySQL:
// the four schemes, escapes, sockets and options.
func TestParseMySQLURL(t *testing.T) {
	root := t.TempDir()
	cnf := filepath.Join(root, "my.cnf")
	os.WriteFile(cnf, []byte(`# Django's documented example
[client]
database = fromfile
user = fileuser
password = "p#ss w\"rd"
default-character-set = utf8
port=3307
[mysqld]
user = mysql
`), 0o644)
	os.WriteFile(filepath.Join(root, "sock.cnf"), []byte("[client]\nsocket=/run/other/mysqld.sock\n[siteplex]\nuser=grouped\n"), 0o644)
	my := func(user, pass, host string, port int, name string, params url.Values) sites.DB {
		return sites.DB{Driver: sites.MySQL, User: user, Password: pass, Host: host, Port: port, Database: name, Params: params}
	}
	tests := []struct {
		raw  string
		want sites.DB
	}{
		{"mysql://app:secret@db.example:3307/shop", my("app", "secret", "db.example", 3307, "shop", nil)},
		{"mysql2://app:secret@db.example/shop", my("app", "secret", "db.example", 0, "shop", nil)},
		{"mysqlgis://app@127.0.0.1:3306/geo", my("app", "", "127.0.0.1", 3306, "geo", nil)},
		{"mysql-connector://app:pw@h/shop", my("app", "pw", "h", 0, "shop", nil)},
		{"MYSQL://app@h/shop", my("app", "", "h", 0, "shop", nil)},
		// Special characters in the password, escaped and raw.
		{"mysql://app:p%40ss%3Aw%2Fo%23rd%3F@h/shop", my("app", "p@ss:w/o#rd?", "h", 0, "shop", nil)},
		{"mysql://app:p@ss/w:rd@h:1/shop", my("app", "p@ss/w:rd", "h", 1, "shop", nil)},
		{"mysql://my%20user:%C3%BCml%C3%A4ut@h/my%20db", my("my user", "ümläut", "h", 0, "my db", nil)},
		// A unix socket, %2F-encoded in the host as dj-database-url reads it.
		{"mysql://app:pw@%2Frun%2Fmysqld%2Fmysqld.sock/shop", my("app", "pw", "/run/mysqld/mysqld.sock", 0, "shop", nil)},
		// ...or as an option; a relative one is under the project root.
		{"mysql://app@localhost/shop?unix_socket=/var/run/mysqld/mysqld.sock", my("app", "", "/var/run/mysqld/mysqld.sock", 0, "shop", nil)},
		{"mysql://app@localhost/shop?unix_socket=run/my.sock", my("app", "", filepath.Join(root, "run/my.sock"), 0, "shop", nil)},
		{"mysql://app@[::1]:3306/shop", my("app", "", "::1", 3306, "shop", nil)},
		{"mysql:///shop", my("", "", "", 0, "shop", nil)},
		// Options: TLS ones kept, ignorable ones dropped, overrides applied.
		{"mysql://app@h/shop?ssl-ca=/etc/ca.pem&charset=utf8mb4&init_command=SET+x%3D1",
			my("app", "", "h", 0, "shop", url.Values{"ssl-ca": {"/etc/ca.pem"}})},
		{"mysql://app@h/shop?ssl_mode=verify_identity&connect_timeout=3",
			my("app", "", "h", 0, "shop", url.Values{"ssl_mode": {"VERIFY_IDENTITY"}, "connect_timeout": {"3"}})},
		{"mysql://app@h/shop?db=other&user=u2&passwd=p2&port=4000", my("u2", "p2", "h", 4000, "other", nil)},
		// An option file fills what the URL leaves empty.
		{"mysql://h?read_default_file=my.cnf", my("fileuser", `p#ss w"rd`, "h", 3307, "fromfile", nil)},
		{"mysql://url:pw@h:1/urldb?read_default_file=" + cnf, my("url", "pw", "h", 1, "urldb", nil)},
		{"mysql://localhost/d?read_default_file=sock.cnf&read_default_group=siteplex", my("grouped", "", "/run/other/mysqld.sock", 0, "d", nil)},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := sites.ParseDatabaseURL(tt.raw, root)
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if len(got.Params) == 0 {
				got.Params = nil
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseMySQLURLErrors(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "bad.cnf"), []byte("[client\nuser=x\n"), 0o644)
	tests := []struct{ raw, want string }{
		{"mysql://u:hunter2@h:3306", `database URL mysql://u:xxxxx@h:3306 names no database: add /<name> after the host`},
		{"mysql://u:hunter2@h:99999/db", `database URL mysql://u:xxxxx@h:99999/db: port "99999" is not a number from 1 to 65535`},
		{"mysql://u:hunter2@h/db?port=x", `database URL mysql://u:xxxxx@h/db?port=x: option port "x" is not a number from 1 to 65535`},
		{"mysql://u:hunter2@h/db?ssl_mode=sometimes", `database URL mysql://u:xxxxx@h/db?ssl_mode=sometimes: option ssl_mode "sometimes" is not one of DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY`},
		{"mysql://u:hunter2@h/db?named_pipe=true", `database URL mysql://u:xxxxx@h/db?named_pipe=true: option named_pipe is not supported by siteplex: connect over TCP or a unix socket (docs/sites.md, MySQL and MariaDB)`},
		{"mysql://u:hunter2@h/db?ssl-capath=/etc/ssl", `database URL mysql://u:xxxxx@h/db?ssl-capath=/etc/ssl: option ssl-capath is not supported by siteplex: connect over TCP or a unix socket (docs/sites.md, MySQL and MariaDB)`},
		{"mysql://u:hunter2@h/db?read_default_group=x", `database URL mysql://u:xxxxx@h/db?read_default_group=x: option read_default_group "x" without read_default_file: siteplex reads only a named option file; add read_default_file`},
		{"mysql://u:hunter2@h/db?read_default_file=missing.cnf", `database URL mysql://u:xxxxx@h/db?read_default_file=missing.cnf: option read_default_file: cannot read option file: open ` + filepath.Join(root, "missing.cnf") + `: no such file or directory`},
		{"mysql://u:hunter2@h/db?read_default_file=bad.cnf", `database URL mysql://u:xxxxx@h/db?read_default_file=bad.cnf: option read_default_file: ` + filepath.Join(root, "bad.cnf") + ` line 1: missing ']' after the group name`},
		{"mysql://u:hunter2@my host/db", `database URL mysql://u:xxxxx@my host/db: host "my host" contains ' '`},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) { checkParseError(t, tt.raw, root, tt.want) })
	}
}

func TestMySQLDisplay(t *testing.T) {
	d, err := sites.ParseDatabaseURL("mysql://app:s3cr%40t@db.example/shop", "/")
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Display(); got != "mysql db.example:3306/shop" {
		t.Errorf("Display = %q", got)
	}
	sock, _ := sites.ParseDatabaseURL("mysql://app:s3cr%40t@%2Frun%2Fmysqld%2Fmysqld.sock/shop", "/")
	if got := sock.Display(); got != "mysql /run/mysqld/mysqld.sock/shop" {
		t.Errorf("socket Display = %q", got)
	}
}

// TestDBFromDjango maps settings.DATABASES entries, as introspection
// reports them, to databases.
func TestDBFromDjango(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "my.cnf"), []byte("[client]\ndatabase = NAME\nuser = USER\npassword = PASSWORD\ndefault-character-set = utf8\n"), 0o644)
	type entry struct {
		engine, name, host, port, user, password string
		options                                  map[string]any
	}
	tests := []struct {
		in   entry
		want sites.DB
	}{
		{entry{"django.db.backends.postgresql", "shop", "db.example", "6543", "app", "pw", nil},
			sites.DB{Driver: sites.Postgres, User: "app", Password: "pw", Host: "db.example", Port: 6543, Database: "shop", Params: url.Values{}}},
		{entry{"django.db.backends.postgresql_psycopg2", "shop", "h", "", "app", "", map[string]any{"sslmode": "require", "connect_timeout": float64(5), "isolation_level": float64(1)}},
			sites.DB{Driver: sites.Postgres, User: "app", Host: "h", Database: "shop", Params: url.Values{"sslmode": {"require"}, "connect_timeout": {"5"}}}},
		{entry{"django_tenants.postgresql_backend", "tenants", "h", "5432", "u", "", nil},
			sites.DB{Driver: sites.Postgres, User: "u", Host: "h", Port: 5432, Database: "tenants", Params: url.Values{}}},
		{entry{"django_pgschemas.postgresql_backend", "pgs", "h", "", "u", "", map[string]any{"options": "-c search_path=x"}},
			sites.DB{Driver: sites.Postgres, User: "u", Host: "h", Database: "pgs", Params: url.Values{"options": {"-c search_path=x"}}}},
		{entry{"django.contrib.gis.db.backends.postgis", "geo", "h", "", "", "", nil},
			sites.DB{Driver: sites.Postgres, Host: "h", Database: "geo", Params: url.Values{}}},
		{entry{"django.db.backends.sqlite3", "dev.db", "", "", "", "", nil}, sites.DB{Driver: sites.SQLite, Path: filepath.Join(root, "dev.db")}},
		{entry{"django.db.backends.sqlite3", "/abs/db.sqlite3", "", "", "", "", nil}, sites.DB{Driver: sites.SQLite, Path: "/abs/db.sqlite3"}},
		{entry{"django.contrib.gis.db.backends.spatialite", "data/../geo.db", "", "", "", "", nil}, sites.DB{Driver: sites.SQLite, Path: filepath.Join(root, "geo.db")}},
		{entry{"django.db.backends.sqlite3", ":memory:", "", "", "", "", nil}, sites.DB{Driver: sites.SQLite, Path: ":memory:"}},
		{entry{"django.db.backends.mysql", "shop", "127.0.0.1", "3306", "app", "p@ss", map[string]any{"charset": "utf8mb4", "init_command": "SET sql_mode='STRICT_TRANS_TABLES'"}},
			sites.DB{Driver: sites.MySQL, User: "app", Password: "p@ss", Host: "127.0.0.1", Port: 3306, Database: "shop"}},
		{entry{"django.db.backends.mysql", "shop", "/run/mysqld/mysqld.sock", "", "app", "", nil},
			sites.DB{Driver: sites.MySQL, User: "app", Host: "/run/mysqld/mysqld.sock", Database: "shop"}},
		{entry{"django.contrib.gis.db.backends.mysql", "shop", "", "", "", "", map[string]any{"unix_socket": "/tmp/mysql.sock", "ssl": map[string]any{"ca": "/etc/ca.pem"}}},
			sites.DB{Driver: sites.MySQL, Host: "/tmp/mysql.sock", Database: "shop", Params: url.Values{"ssl-ca": {"/etc/ca.pem"}}}},
		// Django's documented option-file setup: everything in my.cnf.
		{entry{"django.db.backends.mysql", "", "", "", "", "", map[string]any{"read_default_file": "my.cnf"}},
			sites.DB{Driver: sites.MySQL, User: "USER", Password: "PASSWORD", Database: "NAME"}},
		{entry{"mysql.connector.django", "shop", "h", "", "u", "", map[string]any{"option_files": []any{"my.cnf"}}},
			sites.DB{Driver: sites.MySQL, User: "u", Password: "PASSWORD", Host: "h", Database: "shop"}},
		{entry{"django_prometheus.db.backends.mysql", "shop", "h", "", "u", "", nil},
			sites.DB{Driver: sites.MySQL, User: "u", Host: "h", Database: "shop"}},
	}
	for _, tt := range tests {
		t.Run(tt.in.engine+" "+tt.in.name, func(t *testing.T) {
			e := tt.in
			got, err := sites.DBFromDjango(e.engine, e.name, e.host, e.port, e.user, e.password, e.options, root)
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if got.Driver == sites.MySQL && len(got.Params) == 0 {
				got.Params = nil
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}

	errs := []struct {
		in   entry
		want string
	}{
		{entry{"django.db.backends.oracle", "x", "", "", "", "hunter2", nil}, `DATABASES: ENGINE "django.db.backends.oracle" is not supported: siteplex reads PostgreSQL, MySQL/MariaDB and SQLite`},
		{entry{"django.db.backends.dummy", "", "", "", "", "", nil}, `DATABASES is empty (ENGINE django.db.backends.dummy): Django has no database configured`},
		{entry{"django.db.backends.sqlite3", "", "", "", "", "", nil}, `DATABASES: ENGINE "django.db.backends.sqlite3" has an empty NAME: set NAME to the database file`},
		{entry{"django.db.backends.mysql", "", "h", "", "u", "hunter2", nil}, `DATABASES (ENGINE django.db.backends.mysql): NAME is empty: set it to the database's name`},
		{entry{"django.db.backends.mysql", "d", "h", "x", "u", "hunter2", nil}, `DATABASES: PORT "x" is not a number from 1 to 65535`},
		{entry{"django.db.backends.mysql", "d", "h", "", "u", "hunter2", map[string]any{"ssl": map[string]any{"capath": "/etc/ssl"}}},
			`DATABASES (ENGINE django.db.backends.mysql): option ssl-capath is not supported by siteplex: connect over TCP or a unix socket (docs/sites.md, MySQL and MariaDB)`},
		{entry{"django.db.backends.postgresql", "d", "h", "", "u", "hunter2", map[string]any{"service": "mysvc"}},
			`DATABASES (ENGINE django.db.backends.postgresql): OPTIONS service "mysvc" (pg_service.conf) is not supported by siteplex: give HOST, PORT, USER and NAME`},
	}
	for _, tt := range errs {
		t.Run("error "+tt.want, func(t *testing.T) {
			e := tt.in
			_, err := sites.DBFromDjango(e.engine, e.name, e.host, e.port, e.user, e.password, e.options, root)
			if err == nil || err.Error() != tt.want || !sites.IsUsage(err) {
				t.Errorf("err = %v (usage %v)\nwant %s", err, sites.IsUsage(err), tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("message shows the password: %s", err)
			}
		})
	}
}
