package sites

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// domainSQL is the SQL `siteplex domains` runs, per engine. Every
// statement goes through it: argument markers come from the store's
// Dialect, and each engine has its case in how the tables are locked
// (lock) and how the id counter of multisite_alias is read and put back
// (readSeq, resetSeq). Everything else is plain SQL that runs unchanged on
// SQLite, PostgreSQL and MySQL/MariaDB: CASE, IN, INSERT with parameters,
// no string concatenation. Domains are compared in Go, never with the
// database's `=` (MySQL's default collations ignore case; see Dialect).
type domainSQL struct {
	Dialect
}

// domainSQL returns the SQL for s's engine, or an error for an engine
// `domains` does not support.
func (s *Store) domainSQL() (domainSQL, error) {
	switch s.cfg.Driver {
	case SQLite, Postgres, MySQL:
		return domainSQL{s.Dialect()}, nil
	}
	return domainSQL{}, fmt.Errorf("siteplex domains does not support %s databases; nothing was changed", s.cfg.Driver)
}

// txOptions are the options of a domains transaction: on MySQL and
// MariaDB REPEATABLE READ (InnoDB's default, named in case the server's
// is READ COMMITTED), under which lock's row locks also lock the gaps
// between the rows, so that no one inserts either.
func (d domainSQL) txOptions() *sql.TxOptions {
	if d.driver == MySQL {
		return &sql.TxOptions{Isolation: sql.LevelRepeatableRead}
	}
	return nil
}

// lock takes the write locks first, so a concurrent writer makes the
// transaction wait rather than fail half-way: SQLite's database lock;
// PostgreSQL locks on both tables that let readers read but no one else
// write until the transaction ends (which also keeps the alias id counter
// still); on MySQL and MariaDB a locking read of every row of both tables
// (SELECT … FOR UPDATE: record and gap locks, so no other transaction
// updates, deletes or inserts until this one ends; plain reads still
// run). Never LOCK TABLES there: it commits the transaction it runs in.
func (d domainSQL) lock(ctx context.Context, tx *sql.Tx, aliasTable bool) error {
	switch d.driver {
	case Postgres:
		q := `LOCK TABLE django_site IN SHARE ROW EXCLUSIVE MODE`
		if aliasTable {
			q = `LOCK TABLE django_site, multisite_alias IN SHARE ROW EXCLUSIVE MODE`
		}
		_, err := tx.ExecContext(ctx, q)
		return err
	case MySQL:
		if err := lockRows(ctx, tx, "django_site"); err != nil || !aliasTable {
			return err
		}
		return lockRows(ctx, tx, "multisite_alias")
	}
	_, err := tx.ExecContext(ctx, `UPDATE django_site SET domain = domain WHERE 0 = 1`)
	return err
}

// lockRows locks every row of table (MySQL, MariaDB) until tx ends.
func lockRows(ctx context.Context, tx *sql.Tx, table string) error {
	rows, err := tx.QueryContext(ctx, `SELECT id FROM `+table+` FOR UPDATE`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}

// seqState is the id counter of multisite_alias: SQLite's sqlite_sequence
// row (Present false: no row; Value the last id given), PostgreSQL's
// sequence (last_value, is_called), MySQL's AUTO_INCREMENT table option
// (Value the next id to give).
type seqState struct {
	Present  bool  `json:"present"`
	Value    int64 `json:"value"`
	IsCalled bool  `json:"is_called,omitempty"`
}

// lastGiven is the highest id the counter st accounts for: an alias with a
// higher id means it was moved since.
func (d domainSQL) lastGiven(st seqState) int64 {
	if d.driver == MySQL {
		return st.Value - 1
	}
	return st.Value
}

// readSeq reads the id counter of multisite_alias in tx; nil when the
// table has none (no AUTOINCREMENT, no serial column, no AUTO_INCREMENT).
func (d domainSQL) readSeq(ctx context.Context, tx *sql.Tx) (*seqState, error) {
	switch d.driver {
	case SQLite:
		var v sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'multisite_alias'`).Scan(&v)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return &seqState{}, nil
		case err != nil && strings.Contains(err.Error(), "no such table"):
			return nil, nil
		case err != nil:
			return nil, err
		}
		return &seqState{Present: true, Value: v.Int64}, nil
	case Postgres:
		name, err := d.seqName(ctx, tx)
		if err != nil || name == "" {
			return nil, err
		}
		st := &seqState{Present: true}
		// name is the server's own quoted, schema-qualified name.
		err = tx.QueryRowContext(ctx, `SELECT last_value, is_called FROM `+name).Scan(&st.Value, &st.IsCalled)
		return st, err
	case MySQL:
		// MySQL 8 caches information_schema's table statistics, this
		// counter among them, for a day; 0 makes it ask InnoDB. MariaDB
		// and MySQL 5.7 read InnoDB's counter anyway, and have no such
		// variable (error 1193). The counter is not transactional: it
		// includes this transaction's own inserts.
		if _, err := tx.ExecContext(ctx, `SET SESSION information_schema_stats_expiry = 0`); err != nil && !isMySQLError(err, 1193) {
			return nil, err
		}
		var v sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'multisite_alias'`).Scan(&v)
		if err != nil || !v.Valid {
			return nil, err
		}
		return &seqState{Present: true, Value: v.Int64}, nil
	}
	return nil, nil
}

func (d domainSQL) seqName(ctx context.Context, q queryer) (string, error) {
	var name sql.NullString
	if err := q.QueryRowContext(ctx, `SELECT pg_get_serial_sequence('multisite_alias', 'id')`).Scan(&name); err != nil {
		return "", err
	}
	return name.String, nil
}

// resetSeq puts the id counter of multisite_alias back from now to to:
// only when it is still now and no row has an id above what to accounts
// for (else it says why not, changing nothing). On PostgreSQL and MySQL
// the counter is not transactional: call it in a transaction of its own
// after the rows are committed. It locks the table first so that no insert
// runs in between; on MySQL the ALTER TABLE that sets the counter commits
// tx (and so ends the lock) before it runs, and InnoDB never sets the
// counter at or below an id in use, so an insert in between is safe.
func (d domainSQL) resetSeq(ctx context.Context, tx *sql.Tx, now, to seqState) (string, error) {
	switch d.driver {
	case Postgres:
		if _, err := tx.ExecContext(ctx, `LOCK TABLE multisite_alias IN EXCLUSIVE MODE`); err != nil {
			return "", err
		}
	case MySQL:
		if err := lockRows(ctx, tx, "multisite_alias"); err != nil {
			return "", err
		}
	}
	cur, err := d.readSeq(ctx, tx)
	if err != nil || cur == nil {
		return "", err
	}
	if *cur == to {
		return "", nil // as it was (the rewrite's transaction never committed)
	}
	if *cur != now {
		return "the multisite_alias id counter was moved since (new aliases were added), so it was left as it is", nil
	}
	var maxID sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(id) FROM multisite_alias`).Scan(&maxID); err != nil {
		return "", err
	}
	if maxID.Valid && maxID.Int64 > d.lastGiven(to) {
		return "aliases with higher ids exist, so the multisite_alias id counter was left as it is", nil
	}
	switch d.driver {
	case SQLite:
		if !to.Present {
			_, err = tx.ExecContext(ctx, `DELETE FROM sqlite_sequence WHERE name = 'multisite_alias'`)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE sqlite_sequence SET seq = ? WHERE name = 'multisite_alias'`, to.Value)
		}
	case Postgres:
		var name string
		if name, err = d.seqName(ctx, tx); err == nil && name != "" {
			_, err = tx.ExecContext(ctx, `SELECT setval($1, $2, $3)`, name, to.Value, to.IsCalled)
		}
	case MySQL:
		// DDL takes no parameters; to.Value is an integer. The ALTER waits
		// for every open transaction on the table: at most 10 s, and then
		// the session's wait is the server's again.
		if _, err = tx.ExecContext(ctx, `SET SESSION lock_wait_timeout = 10`); err == nil {
			_, err = tx.ExecContext(ctx, `ALTER TABLE multisite_alias AUTO_INCREMENT = `+strconv.FormatInt(to.Value, 10))
			if _, rerr := tx.ExecContext(ctx, `SET SESSION lock_wait_timeout = DEFAULT`); err == nil {
				err = rerr
			}
		}
	}
	return "", err
}

// isMySQLError reports whether err is MySQL or MariaDB error number n.
func isMySQLError(err error, n ...uint16) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && slices.Contains(n, me.Number)
}

// queryer is a *sql.DB or a *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// idDomain is one row's new domain.
type idDomain struct {
	id     int64
	domain string
}

// setDomains sets domain per id in table with UPDATE … CASE id WHEN …,
// in chunks that stay far below every engine's limit on parameters.
func (d domainSQL) setDomains(ctx context.Context, tx *sql.Tx, table string, rows []idDomain) error {
	const chunk = 400
	for lo := 0; lo < len(rows); lo += chunk {
		part := rows[lo:min(lo+chunk, len(rows))]
		var cases strings.Builder
		args := make([]any, 0, 3*len(part))
		n := 0
		for _, r := range part {
			fmt.Fprintf(&cases, " WHEN %s THEN %s", d.Placeholder(n+1), d.Placeholder(n+2))
			args = append(args, r.id, r.domain)
			n += 2
		}
		ids := make([]string, len(part))
		for i, r := range part {
			n++
			ids[i] = d.Placeholder(n)
			args = append(args, r.id)
		}
		q := `UPDATE ` + table + ` SET domain = CASE id` + cases.String() + ` END WHERE id IN (` + strings.Join(ids, ", ") + `)`
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
	}
	return nil
}

// deleteAliases deletes multisite_alias rows by id.
func (d domainSQL) deleteAliases(ctx context.Context, tx *sql.Tx, ids []int64) error {
	const chunk = 400
	for lo := 0; lo < len(ids); lo += chunk {
		part := ids[lo:min(lo+chunk, len(ids))]
		phs := make([]string, len(part))
		args := make([]any, len(part))
		for i, id := range part {
			phs[i], args[i] = d.Placeholder(i+1), id
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM multisite_alias WHERE id IN (`+strings.Join(phs, ", ")+`)`, args...); err != nil {
			return err
		}
	}
	return nil
}

// insertAlias inserts a multisite_alias row and returns its id (domain
// is unique in the table, on MySQL case-insensitively, so the SELECT finds
// this row only).
func (d domainSQL) insertAlias(ctx context.Context, tx *sql.Tx, a aliasValues) (int64, error) {
	var canon any // NULL, as django-multisite stores "not canonical"
	if a.Canonical {
		canon = true
	}
	q := `INSERT INTO multisite_alias (domain, site_id, is_canonical, redirect_to_canonical) VALUES (` + d.Placeholders(1, 4) + `)`
	if _, err := tx.ExecContext(ctx, q, a.Domain, a.SiteID, canon, a.Redirect); err != nil {
		return 0, err
	}
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM multisite_alias WHERE domain = `+d.Placeholder(1), a.Domain).Scan(&id)
	return id, err
}
