package sites

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// domainSQL is the SQL `siteplex domains` runs, per engine. Every
// statement goes through it, so adding an engine (MySQL/MariaDB) means
// filling in one more case in each method: parameters (ph), how the
// tables are locked (lock) and how the id counter of multisite_alias is
// read and put back (readSeq, resetSeq). Everything else is plain SQL
// that runs unchanged on SQLite and PostgreSQL: CASE, IN, INSERT with
// parameters, no string concatenation.
type domainSQL struct {
	driver Driver
}

// domainSQL returns the SQL for s's engine, or an error for an engine
// `domains` does not support yet.
func (s *Store) domainSQL() (domainSQL, error) {
	switch s.cfg.Driver {
	case SQLite, Postgres:
		return domainSQL{s.cfg.Driver}, nil
	}
	return domainSQL{}, fmt.Errorf("siteplex domains does not support %s databases yet; nothing was changed", s.cfg.Driver)
}

// ph is the n-th (1-based) query parameter.
func (d domainSQL) ph(n int) string {
	if d.driver == Postgres {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}

// lock takes the write locks first, so a concurrent writer makes the
// transaction wait rather than fail half-way: SQLite's database lock, or
// PostgreSQL locks on both tables that let readers read but no one else
// write until the transaction ends (which also keeps the alias id counter
// still).
func (d domainSQL) lock(ctx context.Context, tx *sql.Tx, aliasTable bool) error {
	q := `UPDATE django_site SET domain = domain WHERE 0 = 1`
	if d.driver == Postgres {
		q = `LOCK TABLE django_site IN SHARE ROW EXCLUSIVE MODE`
		if aliasTable {
			q = `LOCK TABLE django_site, multisite_alias IN SHARE ROW EXCLUSIVE MODE`
		}
	}
	_, err := tx.ExecContext(ctx, q)
	return err
}

// seqState is the id counter of multisite_alias: SQLite's sqlite_sequence
// row (Present false: no row), PostgreSQL's sequence (last_value,
// is_called).
type seqState struct {
	Present  bool  `json:"present"`
	Value    int64 `json:"value"`
	IsCalled bool  `json:"is_called,omitempty"`
}

// readSeq reads the id counter of multisite_alias; nil when the table has
// none (no AUTOINCREMENT, no serial column).
func (d domainSQL) readSeq(ctx context.Context, q queryer) (*seqState, error) {
	switch d.driver {
	case SQLite:
		var v sql.NullInt64
		err := q.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'multisite_alias'`).Scan(&v)
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
		name, err := d.seqName(ctx, q)
		if err != nil || name == "" {
			return nil, err
		}
		st := &seqState{Present: true}
		// name is the server's own quoted, schema-qualified name.
		err = q.QueryRowContext(ctx, `SELECT last_value, is_called FROM `+name).Scan(&st.Value, &st.IsCalled)
		return st, err
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
// only when it is still now and no row has an id above to's value (else
// it says why not, changing nothing). On PostgreSQL the sequence is not
// transactional: call it in a transaction of its own after the rows are
// committed; it locks the table so that no insert runs in between.
func (d domainSQL) resetSeq(ctx context.Context, tx *sql.Tx, now, to seqState) (string, error) {
	if d.driver == Postgres {
		if _, err := tx.ExecContext(ctx, `LOCK TABLE multisite_alias IN EXCLUSIVE MODE`); err != nil {
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
	if maxID.Valid && maxID.Int64 > to.Value {
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
	}
	return "", err
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
			fmt.Fprintf(&cases, " WHEN %s THEN %s", d.ph(n+1), d.ph(n+2))
			args = append(args, r.id, r.domain)
			n += 2
		}
		ids := make([]string, len(part))
		for i, r := range part {
			n++
			ids[i] = d.ph(n)
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
			phs[i], args[i] = d.ph(i+1), id
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM multisite_alias WHERE id IN (`+strings.Join(phs, ", ")+`)`, args...); err != nil {
			return err
		}
	}
	return nil
}

// insertAlias inserts a multisite_alias row and returns its id (domain
// is unique in the table).
func (d domainSQL) insertAlias(ctx context.Context, tx *sql.Tx, a aliasValues) (int64, error) {
	var canon any // NULL, as django-multisite stores "not canonical"
	if a.Canonical {
		canon = true
	}
	q := fmt.Sprintf(`INSERT INTO multisite_alias (domain, site_id, is_canonical, redirect_to_canonical) VALUES (%s, %s, %s, %s)`,
		d.ph(1), d.ph(2), d.ph(3), d.ph(4))
	if _, err := tx.ExecContext(ctx, q, a.Domain, a.SiteID, canon, a.Redirect); err != nil {
		return 0, err
	}
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM multisite_alias WHERE domain = `+d.ph(1), a.Domain).Scan(&id)
	return id, err
}
