package sites_test

import (
	"database/sql"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
)

// fullDump is everything in the database as text (testenv.FullDump).
func fullDump(t testing.TB, e engine, u string, db *sql.DB) string {
	t.Helper()
	return testenv.FullDump(t, e.name == "postgres", u, db)
}

// diffLines is testenv.DiffLines.
func diffLines(a, b string) string { return testenv.DiffLines(a, b) }

// addFailingTrigger makes every INSERT into multisite_alias fail with a
// UNIQUE violation, as a concurrent writer taking the domain would.
func addFailingTrigger(t testing.TB, e engine, db *sql.DB) {
	t.Helper()
	stmts := []string{`CREATE TRIGGER siteplex_test_clash BEFORE INSERT ON multisite_alias
BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: multisite_alias.domain'); END`}
	switch e.name {
	case "mysql":
		// What a duplicate raises: error 1062 (ER_DUP_ENTRY), SQLSTATE 23000.
		stmts = []string{`CREATE TRIGGER siteplex_test_clash BEFORE INSERT ON multisite_alias FOR EACH ROW
SIGNAL SQLSTATE '23000' SET MYSQL_ERRNO = 1062, MESSAGE_TEXT = 'Duplicate entry ''x'' for key ''domain'''`}
	case "postgres":
		stmts = []string{`CREATE FUNCTION siteplex_test_clash() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE unique_violation USING MESSAGE = 'duplicate key value violates unique constraint "multisite_alias_domain_key"'; END $$`,
			`CREATE TRIGGER siteplex_test_clash BEFORE INSERT ON multisite_alias FOR EACH ROW EXECUTE FUNCTION siteplex_test_clash()`}
	}
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}
