package sites

import (
	"strconv"
	"strings"
)

// Dialect is what the SQL text of a query differs in between the engines
// a Store reads. Everything else is written once: on MySQL and MariaDB
// the session runs with PIPES_AS_CONCAT and ANSI_QUOTES (see
// mysqlConfig), so `a || b` concatenates and "name" quotes an identifier
// there too, and UNIQUE is checked row by row on every engine.
//
// Notes for writers: MySQL's default collations are case-insensitive, so
// `=` and UNIQUE ignore case there (not on PostgreSQL or SQLite); compare
// domains in Go. MySQL returns booleans as 0/1 (database/sql scans them
// into bool). Use Dialect.Placeholder for every argument.
type Dialect struct{ driver Driver }

// Dialect returns the store's SQL dialect.
func (s *Store) Dialect() Dialect { return Dialect{s.cfg.Driver} }

// Driver is the engine the dialect is for.
func (d Dialect) Driver() Driver { return d.driver }

// Placeholder is the n-th (from 1) argument marker: $n on PostgreSQL and
// SQLite, ? on MySQL (which numbers them by position).
func (d Dialect) Placeholder(n int) string {
	if d.driver == MySQL {
		return "?"
	}
	return "$" + strconv.Itoa(n)
}

// Placeholders is n markers from first on, comma-separated: "$3, $4".
func (d Dialect) Placeholders(first, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(d.Placeholder(first + i))
	}
	return b.String()
}

// Quote quotes an identifier, or a schema-qualified one given in parts
// (Quote("public", "customers_domain")).
func (d Dialect) Quote(parts ...string) string {
	q, esc := `"`, `""`
	if d.driver == MySQL {
		q, esc = "`", "``"
	}
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = q + strings.ReplaceAll(p, q, esc) + q
	}
	return strings.Join(out, ".")
}

// ForUpdate is the clause that locks the rows a SELECT reads of the table
// named alias, to append to it: " FOR UPDATE OF alias" on PostgreSQL
// (which refuses to lock the nullable side of an outer join), " FOR
// UPDATE" on MySQL (MariaDB has no OF; it locks the joined rows too), ""
// on SQLite, whose write transaction locks the whole file (take it first
// with a no-op UPDATE).
func (d Dialect) ForUpdate(alias string) string {
	switch d.driver {
	case Postgres:
		return " FOR UPDATE OF " + alias
	case MySQL:
		return " FOR UPDATE"
	}
	return ""
}
