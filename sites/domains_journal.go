package sites

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/siteplex/siteplex/internal/safefile"
)

// Alias row operations in the journal.
const (
	opUpdate = "update" // the alias's domain changed from Before to After
	opInsert = "insert" // the rewrite created the alias row
)

// journalSite is a django_site row a rewrite changed.
type journalSite struct {
	ID     int64  `json:"id"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// journalAlias is a multisite_alias row a rewrite changed or created.
type journalAlias struct {
	ID     int64  `json:"id"`
	Op     string `json:"op"`
	SiteID int64  `json:"site_id"`
	// Before is the domain before (update); After the domain written.
	Before string `json:"before,omitempty"`
	After  string `json:"after"`
	// The values of a created row.
	Canonical bool `json:"is_canonical,omitempty"`
	Redirect  bool `json:"redirect_to_canonical,omitempty"`
}

// aliasValues are the columns of a multisite_alias row siteplex writes.
type aliasValues struct {
	SiteID    int64
	Domain    string
	Canonical bool
	Redirect  bool
}

// journalEntry is one rewrite: every row it changed or created, and the
// alias id counter before and after (nil when it created no alias).
type journalEntry struct {
	Time      string         `json:"time"`
	Format    string         `json:"format"`
	Sites     []journalSite  `json:"sites"`
	Aliases   []journalAlias `json:"aliases"`
	SeqBefore *seqState      `json:"alias_id_counter_before,omitempty"`
	SeqAfter  *seqState      `json:"alias_id_counter_after,omitempty"`
}

func (e *journalEntry) inserts() int {
	n := 0
	for _, a := range e.Aliases {
		if a.Op == opInsert {
			n++
		}
	}
	return n
}

// domainJournal is the journal file: the rewrites of one database not yet
// restored, oldest first. The last one may not have committed (siteplex
// was stopped between writing the journal and the commit); its rows then
// still hold their old values, and restore finds nothing to undo in it.
type domainJournal struct {
	Version     int            `json:"version"`
	Database    string         `json:"database"`
	DatabaseKey string         `json:"database_key"`
	Entries     []journalEntry `json:"entries"`
}

// dbKey identifies a database for its journal: the SQLite file (absolute,
// symlinks resolved), or the PostgreSQL or MySQL database name — not the
// host or port, which a compose database may change between runs, and
// which for MySQL on "localhost" is a unix socket or TCP depending on
// what exists (see mysqlAddress).
func dbKey(d DB) string {
	id := d.Display()
	switch d.Driver {
	case SQLite:
		id = d.Path
		if real, err := filepath.EvalSymlinks(d.Path); err == nil {
			id = real
		}
	case Postgres, MySQL:
		id = d.Database
	}
	sum := sha256.Sum256([]byte(string(d.Driver) + "\x00" + id))
	return hex.EncodeToString(sum[:4])
}

// DomainJournalPath is the journal of `domains rewrite` for database d in
// the project's state folder stateDir (.siteplex):
// domains-journal-<key>.json, one per database.
func DomainJournalPath(stateDir string, d DB) string {
	return filepath.Join(stateDir, "domains-journal-"+dbKey(d)+".json")
}

// readJournal reads the journal at path; nil, nil when there is none.
func readJournal(path string) (*domainJournal, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the domains journal: %w", err)
	}
	j := &domainJournal{}
	if err := json.Unmarshal(b, j); err != nil || j.Version != 1 {
		return nil, fmt.Errorf("the domains journal %s is damaged or of another siteplex version (%v); it was left as it is", path, err)
	}
	return j, nil
}

// writeJournal writes j to path (0600, fsynced), or removes path when j
// has no entries.
func writeJournal(path string, j *domainJournal) error {
	if len(j.Entries) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return safefile.SyncDir(filepath.Dir(path))
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return safefile.WriteAtomic(path, append(b, '\n'), 0o600)
}

// appendJournal adds e to the journal of database d at path.
func appendJournal(path string, d DB, e journalEntry) error {
	j, err := readJournal(path)
	if err != nil {
		return err
	}
	if j == nil {
		j = &domainJournal{Version: 1, Database: d.Display(), DatabaseKey: dbKey(d)}
	}
	j.Entries = append(j.Entries, e)
	return writeJournal(path, j)
}

// NoJournalError means `domains restore` found no journal: there is no
// rewrite of this database to undo. Nothing was changed.
type NoJournalError struct {
	DB, Journal string
}

func (e *NoJournalError) Error() string {
	return fmt.Sprintf("no rewrite of %s to undo: `siteplex domains restore` puts back exactly what `siteplex domains rewrite` recorded in %s, and there is no such journal (no rewrite since the last restore, or it was made from another project folder); nothing was changed",
		e.DB, e.Journal)
}

// RestoredRow is a row restore puts back (or, with DryRun, would).
type RestoredRow struct {
	Table  string `json:"table"`
	ID     int64  `json:"id"`
	SiteID int64  `json:"site_id,omitempty"`
	From   string `json:"from"`
	// To is the value from before the rewrite ("" with Deleted: the
	// rewrite created the row, restore deletes it).
	To      string `json:"to"`
	Deleted bool   `json:"deleted,omitempty"`
}

// ChangedRow is a row that was changed after the rewrite wrote it; restore
// leaves it as it is.
type ChangedRow struct {
	Table  string `json:"table"`
	ID     int64  `json:"id"`
	SiteID int64  `json:"site_id,omitempty"`
	// Now is the row's value now ("" and Gone when it was deleted),
	// Wrote what the rewrite wrote, Before what restore would have put
	// back.
	Now    string `json:"now"`
	Gone   bool   `json:"gone,omitempty"`
	Wrote  string `json:"wrote"`
	Before string `json:"before"`
}

// RestoreReport says what RestoreDomains did (or, with DryRun, would do).
type RestoreReport struct {
	Mode    string `json:"mode"`
	DryRun  bool   `json:"dry_run"`
	Journal string `json:"journal"`
	// Rewrites is how many rewrites the journal recorded.
	Rewrites int           `json:"rewrites"`
	Restored []RestoredRow `json:"restored"`
	// Changed are rows changed since the rewrite wrote them: reported, not
	// overwritten. They stay in the journal.
	Changed []ChangedRow `json:"changed_since"`
	// Counter says what became of the alias id counter ("" when there was
	// nothing to do, or it was put back).
	Counter string `json:"alias_id_counter,omitempty"`
}

// RestoreOptions configure Store.RestoreDomains.
type RestoreOptions struct {
	// Journal is the journal file (see DomainJournalPath).
	Journal string
	// DryRun computes what would be put back and changes nothing.
	DryRun bool
}

// curState is the rows a journal talks about, as they are (or as a
// restore would leave them).
type curState struct {
	sites   map[int64]string
	aliases map[int64]aliasRow
}

func (c curState) clone() curState {
	n := curState{sites: make(map[int64]string, len(c.sites)), aliases: make(map[int64]aliasRow, len(c.aliases))}
	for k, v := range c.sites {
		n.sites[k] = v
	}
	for k, v := range c.aliases {
		n.aliases[k] = v
	}
	return n
}

// undo computes what restoring the journal does to cur: the rewrites
// undone newest first, each row put back only where it still holds what
// the rewrite wrote. A row that holds the value from before that rewrite,
// or a value an older rewrite left or found, was not changed by that
// rewrite (it never committed, or was undone already). Any other value
// means the row was changed since: it is left as it is, and so are the
// older rewrites of it. It returns the state after the restore and the
// changed rows.
func undo(j *domainJournal, cur curState) (curState, []ChangedRow) {
	final := cur.clone()
	blockedSites, blockedAliases := map[int64]bool{}, map[int64]bool{}
	var changed []ChangedRow
	// seenOlder reports whether v is a value row id had in a rewrite
	// older than entry ei (before or after it).
	seenOlder := func(ei int, site bool, id int64, v string) bool {
		for k := ei - 1; k >= 0; k-- {
			if site {
				for _, r := range j.Entries[k].Sites {
					if r.ID == id && (r.Before == v || r.After == v) {
						return true
					}
				}
				continue
			}
			for _, a := range j.Entries[k].Aliases {
				if a.ID == id && (a.Op == opUpdate && a.Before == v || a.After == v) {
					return true
				}
			}
		}
		return false
	}
	insertedOlder := func(ei int, id int64) bool {
		for k := ei - 1; k >= 0; k-- {
			for _, a := range j.Entries[k].Aliases {
				if a.ID == id && a.Op == opInsert {
					return true
				}
			}
		}
		return false
	}
	for ei := len(j.Entries) - 1; ei >= 0; ei-- {
		e := j.Entries[ei]
		for i := len(e.Aliases) - 1; i >= 0; i-- {
			a := e.Aliases[i]
			if blockedAliases[a.ID] {
				continue
			}
			row, ok := final.aliases[a.ID]
			switch a.Op {
			case opInsert:
				switch {
				case !ok:
					// Gone already.
				case row.domain == a.After && row.siteID == a.SiteID && row.canonical.Valid && row.canonical.Bool == a.Canonical:
					delete(final.aliases, a.ID)
				case row.siteID == a.SiteID && seenOlder(ei, false, a.ID, row.domain):
				default:
					blockedAliases[a.ID] = true
					changed = append(changed, ChangedRow{Table: "multisite_alias", ID: a.ID, SiteID: row.siteID, Now: row.domain, Wrote: a.After})
				}
			case opUpdate:
				switch {
				case ok && row.siteID == a.SiteID && row.domain == a.After:
					row.domain = a.Before
					final.aliases[a.ID] = row
				case ok && row.siteID == a.SiteID && (row.domain == a.Before || seenOlder(ei, false, a.ID, row.domain)):
				case !ok && insertedOlder(ei, a.ID):
					// An older rewrite created it, and it is gone: undone.
				default:
					blockedAliases[a.ID] = true
					changed = append(changed, ChangedRow{Table: "multisite_alias", ID: a.ID, SiteID: a.SiteID, Now: row.domain, Gone: !ok, Wrote: a.After, Before: a.Before})
				}
			}
		}
		for i := len(e.Sites) - 1; i >= 0; i-- {
			r := e.Sites[i]
			if blockedSites[r.ID] {
				continue
			}
			now, ok := final.sites[r.ID]
			switch {
			case ok && now == r.After:
				final.sites[r.ID] = r.Before
			case ok && (now == r.Before || seenOlder(ei, true, r.ID, now)):
			default:
				blockedSites[r.ID] = true
				changed = append(changed, ChangedRow{Table: "django_site", ID: r.ID, Now: now, Gone: !ok, Wrote: r.After, Before: r.Before})
			}
		}
	}
	return final, changed
}

// keepChanged is j with only the rows listed in changed (what a restore
// could not put back), and their entries' counters.
func keepChanged(j *domainJournal, changed []ChangedRow) *domainJournal {
	keep := map[string]bool{}
	for _, c := range changed {
		keep[fmt.Sprint(c.Table, c.ID)] = true
	}
	out := &domainJournal{Version: j.Version, Database: j.Database, DatabaseKey: j.DatabaseKey}
	for _, e := range j.Entries {
		ne := journalEntry{Time: e.Time, Format: e.Format}
		for _, s := range e.Sites {
			if keep[fmt.Sprint("django_site", s.ID)] {
				ne.Sites = append(ne.Sites, s)
			}
		}
		for _, a := range e.Aliases {
			if keep[fmt.Sprint("multisite_alias", a.ID)] {
				ne.Aliases = append(ne.Aliases, a)
			}
		}
		if len(ne.Sites)+len(ne.Aliases) > 0 {
			out.Entries = append(out.Entries, ne)
		}
	}
	return out
}

// readCurrent reads the rows the journal j names.
func (s *Store) readCurrent(ctx context.Context, q queryer, aliasTable bool) (curState, error) {
	cur := curState{sites: map[int64]string{}, aliases: map[int64]aliasRow{}}
	rows, err := s.readDomainRows(ctx, q, false)
	if err != nil {
		return cur, err
	}
	for _, r := range rows {
		cur.sites[r.id] = r.domain
	}
	if aliasTable {
		as, err := s.readAliases(ctx, q)
		if err != nil {
			return cur, err
		}
		for _, a := range as {
			cur.aliases[a.id] = *a
		}
	}
	return cur, nil
}

// openJournal reads the journal for RestoreDomains and DomainsStatus.
func (s *Store) openJournal(path string) (*domainJournal, error) {
	j, err := readJournal(path)
	if err != nil {
		return nil, err
	}
	if j == nil {
		return nil, &NoJournalError{DB: s.cfg.Display(), Journal: path}
	}
	if j.DatabaseKey != dbKey(s.cfg) {
		return nil, fmt.Errorf("the domains journal %s belongs to %s, not %s; nothing was changed", path, j.Database, s.cfg.Display())
	}
	return j, nil
}

// RestoreDomains undoes the rewrites recorded in the journal opts.Journal,
// in one transaction: every django_site and multisite_alias row a rewrite
// changed gets its old value back, every alias row it created is deleted,
// and the alias id counter is put back — but only where the row still
// holds what the rewrite wrote. Rows changed since are listed in
// Changed and left as they are; they stay in the journal, which is
// removed once nothing is left in it. Without a journal it is a
// *NoJournalError and nothing is changed.
func (s *Store) RestoreDomains(ctx context.Context, opts RestoreOptions) (*RestoreReport, error) {
	t, err := s.domainTables(ctx)
	if err != nil {
		return nil, err
	}
	d, err := s.domainSQL()
	if err != nil {
		return nil, err
	}
	j, err := s.openJournal(opts.Journal)
	if err != nil {
		return nil, err
	}
	rep := &RestoreReport{Mode: "restore", DryRun: opts.DryRun, Journal: opts.Journal, Rewrites: len(j.Entries),
		Restored: []RestoredRow{}, Changed: []ChangedRow{}}
	tx, err := s.beginDomainTx(ctx, d, t.Alias, !opts.DryRun)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() // a no-op once committed
	cur, err := s.readCurrent(ctx, tx, t.Alias)
	if err != nil {
		return nil, err
	}
	final, changed := undo(j, cur)
	rep.Changed = append(rep.Changed, changed...)
	plan, deletes, restored := restorePlan(cur, final)
	rep.Restored = append(rep.Restored, restored...)
	if opts.DryRun {
		return rep, nil
	}
	if err := s.applyPlan(ctx, tx, d, plan, deletes); err != nil {
		return nil, err
	}
	seqNow, seqTo := counters(j)
	if seqNow != nil && d.driver == SQLite && t.Alias {
		if rep.Counter, err = d.resetSeq(ctx, tx, *seqNow, *seqTo); err != nil {
			return nil, fmt.Errorf("putting back the alias id counter (rolled back, nothing was changed): %w", s.wrap(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("committing the restore (nothing was changed): %w", s.wrap(err))
	}
	if seqNow != nil && d.driver != SQLite && t.Alias {
		// A sequence or AUTO_INCREMENT is not transactional (and MySQL's
		// ALTER TABLE commits): after the rows are in.
		if rep.Counter, err = s.resetSeqTx(ctx, d, *seqNow, *seqTo); err != nil {
			rep.Counter = fmt.Sprintf("the rows are restored, but the multisite_alias id counter could not be put back: %v", err)
		}
	}
	if err := writeJournal(opts.Journal, keepChanged(j, changed)); err != nil {
		return rep, fmt.Errorf("the domains are restored, but updating the journal %s failed: %w (delete it by hand if nothing is listed as changed since)", opts.Journal, err)
	}
	return rep, nil
}

// restorePlan is what takes the rows from cur to final, by id: the
// updates to write, the alias rows to delete, and each row restored as
// the report lists it. RestoreDomains applies it; DomainsStatus counts it.
func restorePlan(cur, final curState) (plan *journalEntry, deletes []int64, restored []RestoredRow) {
	plan = &journalEntry{}
	for _, id := range slices.Sorted(maps.Keys(cur.sites)) {
		if final.sites[id] != cur.sites[id] {
			plan.Sites = append(plan.Sites, journalSite{ID: id, Before: cur.sites[id], After: final.sites[id]})
			restored = append(restored, RestoredRow{Table: "django_site", ID: id, From: cur.sites[id], To: final.sites[id]})
		}
	}
	for _, id := range slices.Sorted(maps.Keys(cur.aliases)) {
		c := cur.aliases[id]
		f, ok := final.aliases[id]
		switch {
		case !ok:
			deletes = append(deletes, id)
			restored = append(restored, RestoredRow{Table: "multisite_alias", ID: id, SiteID: c.siteID, From: c.domain, Deleted: true})
		case f.domain != c.domain:
			plan.Aliases = append(plan.Aliases, journalAlias{Op: opUpdate, ID: id, SiteID: c.siteID, Before: c.domain, After: f.domain})
			restored = append(restored, RestoredRow{Table: "multisite_alias", ID: id, SiteID: c.siteID, From: c.domain, To: f.domain})
		}
	}
	return plan, deletes, restored
}

// resetSeqTx runs domainSQL.resetSeq in a transaction of its own.
func (s *Store) resetSeqTx(ctx context.Context, d domainSQL, now, to seqState) (string, error) {
	tx, err := s.db.BeginTx(ctx, d.txOptions())
	if err != nil {
		return "", err
	}
	msg, err := d.resetSeq(ctx, tx, now, to)
	if err != nil {
		tx.Rollback()
		return "", err
	}
	return msg, tx.Commit()
}

// counters returns the alias id counter as the last rewrite that created
// aliases left it, and as it was before the first one (nil, nil when no
// rewrite created aliases).
func counters(j *domainJournal) (now, before *seqState) {
	for _, e := range j.Entries {
		if e.SeqBefore != nil && e.SeqAfter != nil {
			if before == nil {
				before = e.SeqBefore
			}
			now = e.SeqAfter
		}
	}
	return now, before
}

// DomainsStatus is the state of `domains rewrite` for one database.
type DomainsStatus struct {
	Database string `json:"database"`
	Journal  string `json:"journal"`
	// Active is true when a restore would change something: a rewrite is
	// in effect.
	Active bool `json:"active"`
	// Rewrites is how many rewrites the journal holds (0: no journal);
	// Since and Format are the first one's time and the last one's format.
	Rewrites int    `json:"rewrites"`
	Since    string `json:"since,omitempty"`
	Format   string `json:"format,omitempty"`
	// Restorable is how many rows a restore would put back; Changed the
	// rows changed since the rewrite (a restore leaves them alone).
	Restorable int          `json:"restorable"`
	Changed    []ChangedRow `json:"changed_since"`
}

// DomainsStatus reads the journal and the rows it names (no transaction,
// no lock) and says whether a rewrite is in effect.
func (s *Store) DomainsStatus(ctx context.Context, journal string) (*DomainsStatus, error) {
	t, err := s.domainTables(ctx)
	if err != nil {
		return nil, err
	}
	st := &DomainsStatus{Database: s.cfg.Display(), Journal: journal, Changed: []ChangedRow{}}
	j, err := s.openJournal(journal)
	var nj *NoJournalError
	if errors.As(err, &nj) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	st.Rewrites = len(j.Entries)
	if len(j.Entries) > 0 {
		st.Since, st.Format = j.Entries[0].Time, j.Entries[len(j.Entries)-1].Format
	}
	cur, err := s.readCurrent(ctx, s.db, t.Alias)
	if err != nil {
		return nil, err
	}
	final, changed := undo(j, cur)
	st.Changed = append(st.Changed, changed...)
	_, _, restored := restorePlan(cur, final)
	st.Restorable = len(restored)
	st.Active = st.Restorable > 0
	return st, nil
}
