package sites

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestSameDatabase: how a DATABASE_URL is compared with DATABASES['default']
// (docs/sites.md, "Where the database comes from").
func TestSameDatabase(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "db.sqlite3")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.sqlite3")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	pg := func(host string, port int, name string) DB {
		return DB{Driver: Postgres, Host: host, Port: port, Database: name, User: "u"}
	}
	tests := []struct {
		name string
		a, b DB
		want bool
	}{
		{"same sqlite file", DB{Driver: SQLite, Path: file}, DB{Driver: SQLite, Path: dir + "/./db.sqlite3"}, true},
		{"sqlite through a symlink", DB{Driver: SQLite, Path: file}, DB{Driver: SQLite, Path: link}, true},
		{"other sqlite file", DB{Driver: SQLite, Path: file}, DB{Driver: SQLite, Path: filepath.Join(dir, "var", "dev.sqlite3")}, false},
		{"driver differs", pg("localhost", 5432, "db"), DB{Driver: SQLite, Path: file}, false},
		{"localhost is 127.0.0.1, default port", pg("localhost", 0, "db"), pg("127.0.0.1", 5432, "db"), true},
		{"a socket folder is local", pg("/var/run/postgresql", 5432, "db"), pg("", 0, "db"), true},
		{"::1 is local", pg("[::1]", 5432, "db"), pg("localhost", 5432, "db"), true},
		{"other name", pg("localhost", 5432, "db"), pg("localhost", 5432, "otherproject"), false},
		{"other port", pg("localhost", 5432, "db"), pg("localhost", 5433, "db"), false},
		{"other host", pg("db.example", 5432, "db"), pg("localhost", 5432, "db"), false},
		{"user does not count", pg("localhost", 5432, "db"), DB{Driver: Postgres, Host: "localhost", Database: "db", User: "other"}, true},
		{"mysql default port", DB{Driver: MySQL, Host: "127.0.0.1", Database: "db"}, DB{Driver: MySQL, Host: "localhost", Port: 3306, Database: "db"}, true},
		{"same compose host", pg("database_default", 5432, "db"), pg("database_default", 0, "db"), true},
	}
	p := &Project{Root: dir}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.sameDatabase(context.Background(), tt.a, tt.b, nil); got != tt.want {
				t.Errorf("sameDatabase(%s, %s) = %v, want %v", tt.a.Display(), tt.b.Display(), got, tt.want)
			}
			if got := p.sameDatabase(context.Background(), tt.b, tt.a, nil); got != tt.want {
				t.Errorf("sameDatabase(%s, %s) = %v, want %v (swapped)", tt.b.Display(), tt.a.Display(), got, tt.want)
			}
		})
	}
}
