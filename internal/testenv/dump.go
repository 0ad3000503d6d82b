package testenv

import (
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FullDump is everything in the database as text: every table's rows
// (sorted, every column), the id counters, and the engine's own dump
// (sqlite3 .dump; pg_dump with each table's COPY lines sorted, because
// PostgreSQL keeps updated rows in a new place and pg_dump copies them in
// storage order; mariadb-dump, whose CREATE TABLE carries the
// AUTO_INCREMENT counter). The engine is PostgreSQL when postgres is set,
// MySQL/MariaDB for a mysql:// URL u (db one of MariaDB.Open's handles),
// else SQLite.
func FullDump(t testing.TB, postgres bool, u string, db *sql.DB) string {
	t.Helper()
	var b strings.Builder
	mysql := strings.HasPrefix(u, "mysql://")
	q, lq, rq := `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`, `"`, `"`
	switch {
	case postgres:
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name`
	case mysql:
		q, lq, rq = `SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY table_name`, "`", "`"
	}
	for _, table := range column(t, db, q) {
		fmt.Fprintf(&b, "== %s\n", table)
		rows, err := db.Query(`SELECT * FROM ` + lq + table + rq)
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		cols, _ := rows.Columns()
		var lines []string
		for rows.Next() {
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var parts []string
			for i, v := range vals {
				s := "NULL"
				if v.Valid {
					s = fmt.Sprintf("%q", v.String)
				}
				parts = append(parts, cols[i]+"="+s)
			}
			lines = append(lines, strings.Join(parts, " "))
		}
		rows.Close()
		slices.Sort(lines)
		b.WriteString(strings.Join(lines, "\n") + "\n")
	}
	switch {
	case postgres:
		for _, seq := range column(t, db, `SELECT sequence_name FROM information_schema.sequences WHERE sequence_schema = current_schema() ORDER BY 1`) {
			var last int64
			var called bool
			if err := db.QueryRow(`SELECT last_value, is_called FROM "`+seq+`"`).Scan(&last, &called); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "== sequence %s %d %v\n", seq, last, called)
		}
		b.WriteString(pgDump(t, u))
	case mysql:
		rows, err := db.Query(`SELECT table_name, auto_increment FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY table_name`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var table string
			var next sql.NullInt64
			if err := rows.Scan(&table, &next); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "== auto_increment %s %v\n", table, next)
		}
		rows.Close()
		b.WriteString(mariaDump(t, u))
	default:
		if sqlite3, err := exec.LookPath("sqlite3"); err == nil {
			path := strings.TrimPrefix(u, "sqlite:///")
			out, err := exec.Command(sqlite3, path, ".dump").Output()
			if err != nil {
				t.Fatalf("sqlite3 .dump: %v", err)
			}
			b.WriteString("== sqlite3 .dump\n")
			b.Write(out)
		}
	}
	return b.String()
}

// DiffLines shows the lines of a that b lacks ("- ") and the other way
// round ("+ "), for a failed comparison of two dumps.
func DiffLines(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for _, l := range strings.Split(a, "\n") {
		if !mb[l] {
			out = append(out, "- "+l)
		}
	}
	for _, l := range strings.Split(b, "\n") {
		if !ma[l] {
			out = append(out, "+ "+l)
		}
	}
	if len(out) == 0 {
		return "(the same lines, in another order)"
	}
	return strings.Join(out, "\n")
}

func column(t testing.TB, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// pgDump is pg_dump's output with each COPY block's data lines sorted.
func pgDump(t testing.TB, u string) string {
	t.Helper()
	bin, err := exec.LookPath("pg_dump")
	if err != nil {
		m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_dump")
		if len(m) == 0 {
			Missing(t, "pg_dump (postgresql-client): the full-dump comparison needs it")
		}
		bin = m[len(m)-1]
	}
	out, err := exec.Command(bin, "--no-owner", "-d", u).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	lines := strings.Split(string(out), "\n")
	var b strings.Builder
	for i := 0; i < len(lines); i++ {
		if strings.HasPrefix(lines[i], `\restrict `) || strings.HasPrefix(lines[i], `\unrestrict `) {
			continue // a random key per run (pg_dump 15.14 and later)
		}
		b.WriteString(lines[i] + "\n")
		if !strings.HasPrefix(lines[i], "COPY ") {
			continue
		}
		j := i + 1
		for j < len(lines) && lines[j] != `\.` {
			j++
		}
		data := slices.Clone(lines[i+1 : j])
		slices.Sort(data)
		for _, l := range data {
			b.WriteString(l + "\n")
		}
		i = j - 1
	}
	return b.String()
}

// mariaDump is mariadb-dump's output for the database of the mysql:// URL
// u: schema (with each table's AUTO_INCREMENT) and one INSERT per row in
// primary-key order, without the date and comments that differ per run.
func mariaDump(t testing.TB, u string) string {
	t.Helper()
	bin, err := exec.LookPath("mariadb-dump")
	if err != nil {
		if bin, err = exec.LookPath("mysqldump"); err != nil {
			Missing(t, "mariadb-dump (mariadb-client): the full-dump comparison needs it")
		}
	}
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatalf("FullDump: %v", err)
	}
	cmd := exec.Command(bin, "--no-defaults", "--protocol=TCP", "-h", pu.Hostname(), "-P", pu.Port(), "-u", pu.User.Username(),
		"--single-transaction", "--skip-dump-date", "--skip-comments", "--skip-extended-insert", "--triggers", "--routines",
		strings.TrimPrefix(pu.Path, "/"))
	pw, _ := pu.User.Password()
	cmd.Env = append(os.Environ(), "MYSQL_PWD="+pw)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v: %s", filepath.Base(bin), err, stderr.String())
	}
	return "== mariadb-dump\n" + string(out)
}
