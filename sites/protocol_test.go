package sites_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/sites"
)

// TestWrongProtocol: a mysql:// URL at PostgreSQL's port and a postgres://
// URL at MariaDB's fail with one line that names the server found there,
// against the real servers.
func TestWrongProtocol(t *testing.T) {
	pg := testenv.StartPostgres(t)
	maria := testenv.StartMariaDB(t)
	tests := []struct {
		name string
		url  string
		want []string
	}{
		{"mysql URL at PostgreSQL", fmt.Sprintf("mysql://root@%s:%d/db", pg.Host, pg.Port),
			[]string{fmt.Sprintf("the server at %s:%d (from --db) does not speak the MySQL protocol: it is PostgreSQL; use a postgres:// URL", pg.Host, pg.Port)}},
		{"postgres URL at MariaDB", fmt.Sprintf("postgres://root@%s:%d/db", maria.Host, maria.Port),
			[]string{fmt.Sprintf("the server at %s:%d (from --db) does not speak the PostgreSQL protocol: it is MySQL/MariaDB (", maria.Host, maria.Port), "MariaDB", "use a mysql:// URL"}},
		{"postgres URL at MariaDB without TLS", fmt.Sprintf("postgres://root@%s:%d/db?sslmode=disable", maria.Host, maria.Port),
			[]string{"does not speak the PostgreSQL protocol: it is MySQL/MariaDB ("}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := sites.ParseDatabaseURL(tt.url, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			d.Source = "--db"
			st, err := sites.Open(context.Background(), d, false)
			if err == nil {
				st.Close()
				t.Fatal("opened")
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q\nlacks %q", msg, w)
				}
			}
			if strings.Contains(msg, "%!") || strings.Contains(msg, "\n") || strings.Contains(msg, "invalid connection") {
				t.Errorf("error %q is not one clear line", msg)
			}
			var wp *sites.WrongProtocolError
			if !errors.As(err, &wp) {
				t.Errorf("error %T, want *sites.WrongProtocolError", err)
			}
		})
	}
	// The right schemes still work.
	for _, u := range []string{pg.URL("postgres"), maria.URL("mysql")} {
		d, err := sites.ParseDatabaseURL(u, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		st, err := sites.Open(context.Background(), d, false)
		if err != nil {
			t.Errorf("%s: %v", d.Display(), err)
			continue
		}
		st.Close()
	}
}
