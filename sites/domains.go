package sites

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MaxDomainLen is the length of django_site.domain and
// multisite_alias.domain (varchar(100)). PostgreSQL refuses longer values;
// SQLite silently stores them, so siteplex checks before writing.
const MaxDomainLen = 100

// DomainOptions configure Store.RewriteDomains.
type DomainOptions struct {
	// Format is applied to each multisite-plus slug.
	Format DomainFormat
	// Journal is the journal file (see DomainJournalPath) every row the
	// rewrite changes is recorded in before it commits; required unless
	// DryRun.
	Journal string
	// DryRun computes and checks everything, then writes nothing.
	DryRun bool
}

// DomainChange is one multisite-plus site considered by a rewrite. Old ==
// New means the site already had the wanted domain.
type DomainChange struct {
	ID   int64  `json:"id"`
	Slug string `json:"slug"`
	Old  string `json:"old"`
	New  string `json:"new"`
}

// Changed reports whether the site's domain is (or would be) written.
func (c DomainChange) Changed() bool { return c.Old != c.New }

// SkippedSite is a site a rewrite left alone, and why. Nothing of it is
// touched: not its domain, not its aliases.
type SkippedSite struct {
	ID     int64  `json:"id"`
	Domain string `json:"domain"`
	Reason string `json:"reason"`
}

// DomainReport says what RewriteDomains did (or, with DryRun, would do).
type DomainReport struct {
	Mode   string `json:"mode"`
	Format string `json:"format,omitempty"`
	DryRun bool   `json:"dry_run"`
	// Changes lists every site with a multisite-plus row and a slug that
	// got a new domain or already had it, by id.
	Changes []DomainChange `json:"changes"`
	// Skipped lists the sites left alone: no multisite-plus row, or an
	// empty slug.
	Skipped []SkippedSite `json:"skipped"`
	// AliasTable is true when multisite_alias exists; the counts below are
	// canonical aliases of the changed sites re-synced to their domain and
	// canonical aliases created for those that had none.
	AliasTable     bool `json:"alias_table"`
	AliasesUpdated int  `json:"aliases_updated"`
	AliasesCreated int  `json:"aliases_created"`
	// Journal is the file the rewrite is recorded in, for `domains
	// restore` ("" for a dry run or when nothing changed).
	Journal string `json:"journal,omitempty"`
}

// ChangedCount is the number of sites whose domain changes.
func (r *DomainReport) ChangedCount() int {
	n := 0
	for _, c := range r.Changes {
		if c.Changed() {
			n++
		}
	}
	return n
}

// DomainClashError means a new domain is already taken by another site's
// django_site.domain or one of its aliases. Nothing was written.
type DomainClashError struct {
	Domain string
	// Site is the site that would get Domain.
	Site SiteRef
	// Other is the site that has it (or would get it too), As says how:
	// "domain", "new domain", "alias", "canonical alias" or "own alias".
	Other SiteRef
	As    string
}

// SiteRef names a site in messages: "2 (gh, www.example.gh)".
type SiteRef struct {
	ID     int64
	Slug   string
	Domain string
}

func (r SiteRef) String() string {
	var parts []string
	if r.Slug != "" {
		parts = append(parts, r.Slug)
	}
	if r.Domain != "" {
		parts = append(parts, r.Domain)
	}
	if len(parts) == 0 {
		return "site " + strconv.FormatInt(r.ID, 10)
	}
	return "site " + strconv.FormatInt(r.ID, 10) + " (" + strings.Join(parts, ", ") + ")"
}

func (e *DomainClashError) Error() string {
	var why string
	switch e.As {
	case "new domain":
		why = fmt.Sprintf("%s and %s would both get the domain %q", e.Site, e.Other, e.Domain)
	case "alias":
		why = fmt.Sprintf("%q for %s is already an alias (multisite_alias) of %s", e.Domain, e.Site, e.Other)
	case "canonical alias":
		why = fmt.Sprintf("%q for %s is already the canonical alias (multisite_alias) of %s, which the rewrite leaves alone", e.Domain, e.Site, e.Other)
	case "own alias":
		why = fmt.Sprintf("%q for %s is already one of its own non-canonical aliases (multisite_alias), so its canonical alias cannot take that name", e.Domain, e.Site)
	default:
		why = fmt.Sprintf("%q for %s is already the domain of %s", e.Domain, e.Site, e.Other)
	}
	return "domain clash: " + why + "; nothing was changed. Change the slug or the domain format (--format), or rename the other site first"
}

// InvalidDomainsError lists new domains that are not valid hostnames or do
// not fit django_site.domain. Nothing was written.
type InvalidDomainsError struct {
	Problems []string
}

func (e *InvalidDomainsError) Error() string {
	return fmt.Sprintf("refusing to rewrite domains, nothing was changed:\n  %s\nfix the slugs in django_multisite_plus_site or choose another --format",
		strings.Join(e.Problems, "\n  "))
}

// NoPlusTableError means the database has no django_multisite_plus_site
// table, so there are no slugs to work from.
type NoPlusTableError struct{ DB string }

func (e *NoPlusTableError) Error() string {
	return fmt.Sprintf("no django_multisite_plus_site table in %s: `siteplex domains` works on django-multisite-plus sites only; nothing was changed", e.DB)
}

// domainRow is one django_site row with its multisite-plus columns and
// aliases.
type domainRow struct {
	id         int64
	domain     string
	plus       bool
	slug, real string
	canonical  *aliasRow   // nil: none
	aliases    []*aliasRow // non-canonical
	newDomain  string
	// considered is true for the sites a rewrite works on (a
	// multisite-plus row and a slug); every other site is left alone.
	considered bool
}

// aliasRow is one multisite_alias row.
type aliasRow struct {
	id, siteID int64
	domain     string
	canonical  sql.NullBool
	redirect   bool
}

// RewriteDomains sets django_site.domain of every site with a
// django_multisite_plus_site row and a slug to opts.Format applied to the
// slug, re-syncs those sites' canonical multisite_alias rows and creates
// missing ones — all in one transaction (reference: django-multisite.md
// §5.6). Sites without a multisite-plus row or with an empty slug are not
// touched at all, aliases included. last_updated_at is never touched.
//
// Before the transaction commits, every row it changes or creates is
// appended to the journal opts.Journal (fsynced, mode 0600), with the
// alias id counter, so that RestoreDomains can undo exactly this; a
// rewrite that changes nothing writes no journal entry.
//
// New domains are checked before anything is written: an invalid hostname
// or one longer than 100 characters gives *InvalidDomainsError, a domain
// already used by another site (as its domain or an alias) gives
// *DomainClashError. Any error rolls the transaction back, so every row is
// as it was. The Store must have been opened writable (Open(ctx, d, true))
// unless DryRun is set.
func (s *Store) RewriteDomains(ctx context.Context, opts DomainOptions) (*DomainReport, error) {
	t, err := s.domainTables(ctx)
	if err != nil {
		return nil, err
	}
	d, err := s.domainSQL()
	if err != nil {
		return nil, err
	}
	if !opts.DryRun && opts.Journal == "" {
		return nil, fmt.Errorf("domains rewrite: no journal file given")
	}
	rep := &DomainReport{Mode: "rewrite", Format: opts.Format.String(), DryRun: opts.DryRun, AliasTable: t.Alias,
		Changes: []DomainChange{}, Skipped: []SkippedSite{}}
	tx, err := s.beginDomainTx(ctx, d, t.Alias, !opts.DryRun)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() // a no-op once committed
	rows, err := s.readDomainRows(ctx, tx, t.Alias)
	if err != nil {
		return nil, err
	}
	plan, err := planRewrite(rows, opts.Format, rep)
	if err != nil || opts.DryRun {
		return rep, err
	}
	if len(plan.Sites) == 0 && len(plan.Aliases) == 0 {
		return rep, nil
	}
	if t.Alias && plan.inserts() > 0 {
		if plan.SeqBefore, err = d.readSeq(ctx, tx); err != nil {
			return nil, s.wrap(err)
		}
	}
	if err := s.applyPlan(ctx, tx, d, plan, nil); err != nil {
		return nil, err
	}
	if plan.SeqBefore != nil {
		if plan.SeqAfter, err = d.readSeq(ctx, tx); err != nil {
			return nil, s.wrap(err)
		}
	}
	// The journal before the commit: if siteplex dies in between, the
	// rows are as they were and restore finds nothing to undo.
	if err := appendJournal(opts.Journal, s.cfg, *plan); err != nil {
		return nil, fmt.Errorf("recording the rewrite in %s (rolled back, nothing was changed): %w", opts.Journal, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("committing the domain changes (nothing was changed): %w", s.wrap(err))
	}
	rep.Journal = opts.Journal
	return rep, nil
}

// beginDomainTx begins the transaction of a rewrite or restore; with
// lock, it takes the write locks first (see domainSQL.lock).
func (s *Store) beginDomainTx(ctx context.Context, d domainSQL, aliasTable, lock bool) (*sql.Tx, error) {
	tx, err := s.db.BeginTx(ctx, d.txOptions())
	if err != nil {
		return nil, s.wrap(err)
	}
	if lock {
		if err := d.lock(ctx, tx, aliasTable); err != nil {
			tx.Rollback()
			return nil, s.wrapWrite(err)
		}
	}
	return tx, nil
}

// domainTables checks that the tables `domains` works on exist.
func (s *Store) domainTables(ctx context.Context) (Tables, error) {
	t, err := s.Tables(ctx)
	if err != nil {
		return t, err
	}
	if !t.Site {
		return t, &NoSiteTableError{DB: s.cfg.Display()}
	}
	if !t.Plus {
		return t, &NoPlusTableError{DB: s.cfg.Display()}
	}
	return t, nil
}

// readDomainRows reads django_site, the multisite-plus columns and every
// alias row.
func (s *Store) readDomainRows(ctx context.Context, q queryer, aliasTable bool) ([]*domainRow, error) {
	rs, err := q.QueryContext(ctx, `SELECT s.id, s.domain, m.site_id, m.slug, m.real_domain
FROM django_site s LEFT JOIN django_multisite_plus_site m ON m.site_id = s.id ORDER BY s.id`)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rs.Close()
	var list []*domainRow
	byID := map[int64]*domainRow{}
	for rs.Next() {
		r := &domainRow{}
		var plusID sql.NullInt64
		var slug, real sql.NullString
		if err := rs.Scan(&r.id, &r.domain, &plusID, &slug, &real); err != nil {
			return nil, s.wrap(err)
		}
		r.plus, r.slug, r.real = plusID.Valid, slug.String, real.String
		list = append(list, r)
		byID[r.id] = r
	}
	if err := rs.Err(); err != nil {
		return nil, s.wrap(err)
	}
	rs.Close()
	if !aliasTable {
		return list, nil
	}
	aliases, err := s.readAliases(ctx, q)
	if err != nil {
		return nil, err
	}
	for _, a := range aliases {
		r, ok := byID[a.siteID]
		if !ok {
			continue
		}
		if a.canonical.Valid && a.canonical.Bool && r.canonical == nil {
			r.canonical = a
		} else {
			r.aliases = append(r.aliases, a)
		}
	}
	return list, nil
}

// readAliases reads every multisite_alias row, by id.
func (s *Store) readAliases(ctx context.Context, q queryer) ([]*aliasRow, error) {
	as, err := q.QueryContext(ctx, `SELECT id, site_id, domain, is_canonical, redirect_to_canonical FROM multisite_alias ORDER BY id`)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer as.Close()
	var out []*aliasRow
	for as.Next() {
		a := &aliasRow{}
		if err := as.Scan(&a.id, &a.siteID, &a.domain, &a.canonical, &a.redirect); err != nil {
			return nil, s.wrap(err)
		}
		out = append(out, a)
	}
	if err := as.Err(); err != nil {
		return nil, s.wrap(err)
	}
	return out, nil
}

// planRewrite decides each row's new domain, checks validity and clashes,
// fills rep and returns the rows to write. It does no I/O.
func planRewrite(rows []*domainRow, format DomainFormat, rep *DomainReport) (*journalEntry, error) {
	var problems []string
	for _, r := range rows {
		r.newDomain = r.domain
		switch {
		case !r.plus:
			rep.Skipped = append(rep.Skipped, SkippedSite{ID: r.id, Domain: r.domain, Reason: "no django-multisite-plus row"})
			continue
		case r.slug == "":
			rep.Skipped = append(rep.Skipped, SkippedSite{ID: r.id, Domain: r.domain, Reason: "empty slug"})
			continue
		}
		nd := format.Apply(r.slug, r.id)
		ref := SiteRef{ID: r.id, Slug: r.slug, Domain: r.domain}
		if _, err := Hostname(nd); err != nil {
			problems = append(problems, fmt.Sprintf("%s: new domain: %v", ref, err))
			continue
		}
		if len(nd) > MaxDomainLen {
			problems = append(problems, fmt.Sprintf("%s: new domain %q is %d characters; django_site.domain holds at most %d", ref, nd, len(nd), MaxDomainLen))
			continue
		}
		r.newDomain, r.considered = nd, true
		rep.Changes = append(rep.Changes, DomainChange{ID: r.id, Slug: r.slug, Old: r.domain, New: nd})
	}
	if len(problems) > 0 {
		return nil, &InvalidDomainsError{Problems: problems}
	}
	if err := checkClashes(rows, rep.AliasTable); err != nil {
		return nil, err
	}
	plan := &journalEntry{Time: time.Now().UTC().Format(time.RFC3339Nano), Format: format.String()}
	for _, r := range rows {
		if !r.considered {
			continue
		}
		if r.newDomain != r.domain {
			plan.Sites = append(plan.Sites, journalSite{ID: r.id, Before: r.domain, After: r.newDomain})
		}
		if !rep.AliasTable {
			continue
		}
		switch {
		case r.canonical == nil:
			plan.Aliases = append(plan.Aliases, journalAlias{Op: opInsert, SiteID: r.id, After: r.newDomain, Canonical: true, Redirect: true})
			rep.AliasesCreated++
		case r.canonical.domain != r.newDomain:
			plan.Aliases = append(plan.Aliases, journalAlias{Op: opUpdate, ID: r.canonical.id, SiteID: r.id, Before: r.canonical.domain, After: r.newDomain})
			rep.AliasesUpdated++
		}
	}
	return plan, nil
}

// checkClashes finds a considered site whose new domain (compared like
// Django does, case-insensitively) is another site's final domain, or an
// alias that stays: any site's non-canonical alias, or the canonical alias
// of a site the rewrite leaves alone.
func checkClashes(rows []*domainRow, aliasTable bool) error {
	ref := func(r *domainRow) SiteRef { return SiteRef{ID: r.id, Slug: r.slug, Domain: r.domain} }
	final := map[string]*domainRow{}
	// Changed sites first, so a clash is reported from their side.
	ordered := append([]*domainRow(nil), rows...)
	sort.SliceStable(ordered, func(i, j int) bool {
		return ordered[i].newDomain != ordered[i].domain && ordered[j].newDomain == ordered[j].domain
	})
	for _, r := range ordered {
		if r.newDomain == "" {
			continue
		}
		k := strings.ToLower(r.newDomain)
		o, ok := final[k]
		if !ok {
			final[k] = r
			continue
		}
		if o.newDomain == o.domain && r.newDomain == r.domain {
			continue // both unchanged: not ours to judge
		}
		site, other := o, r
		if site.newDomain == site.domain && other.newDomain != other.domain {
			site, other = other, site
		}
		as := "domain"
		if other.newDomain != other.domain {
			as = "new domain"
		}
		return &DomainClashError{Domain: site.newDomain, Site: ref(site), Other: ref(other), As: as}
	}
	if !aliasTable {
		return nil
	}
	// The aliases that stay as they are, and whose they are.
	type stay struct {
		owner *domainRow
		as    string
	}
	stays := map[string]stay{}
	for _, owner := range rows {
		for _, a := range owner.aliases {
			stays[strings.ToLower(a.domain)] = stay{owner, "alias"}
		}
		if owner.canonical != nil && !owner.considered {
			stays[strings.ToLower(owner.canonical.domain)] = stay{owner, "canonical alias"}
		}
	}
	for _, r := range rows {
		if !r.considered || r.newDomain == r.domain && r.canonical != nil && r.canonical.domain == r.newDomain {
			continue // its domain and canonical alias stay as they are
		}
		st, ok := stays[strings.ToLower(r.newDomain)]
		if !ok {
			continue
		}
		as := st.as
		if st.owner == r {
			as = "own alias"
		}
		return &DomainClashError{Domain: r.newDomain, Site: ref(r), Other: ref(st.owner), As: as}
	}
	return nil
}

// applyPlan writes the rows of e in tx: alias rows to delete first, then
// every changed domain gets a placeholder ('siteplex-swap-<id>.invalid',
// which cannot be a real domain) and then its new value — so that rows may
// swap domains without tripping the UNIQUE constraints, which are checked
// row by row — and last the alias rows to create (their ids are filled
// in). deletes are alias ids to delete (restore).
func (s *Store) applyPlan(ctx context.Context, tx *sql.Tx, d domainSQL, e *journalEntry, deletes []int64) error {
	fail := func(what string, err error) error {
		return fmt.Errorf("%s (rolled back, nothing was changed): %w", what, s.wrapWrite(err))
	}
	if err := d.deleteAliases(ctx, tx, deletes); err != nil {
		return fail("deleting aliases", err)
	}
	var sites, sitesTmp, aliases, aliasesTmp []idDomain
	for _, r := range e.Sites {
		sites = append(sites, idDomain{r.ID, r.After})
		sitesTmp = append(sitesTmp, idDomain{r.ID, fmt.Sprintf("siteplex-swap-%d.invalid", r.ID)})
	}
	for _, a := range e.Aliases {
		if a.Op == opUpdate {
			aliases = append(aliases, idDomain{a.ID, a.After})
			aliasesTmp = append(aliasesTmp, idDomain{a.ID, fmt.Sprintf("siteplex-swap-%d.invalid", a.ID)})
		}
	}
	for _, step := range []struct {
		what, table string
		rows        []idDomain
	}{
		{"updating django_site", "django_site", sitesTmp},
		{"updating multisite_alias", "multisite_alias", aliasesTmp},
		{"updating django_site", "django_site", sites},
		{"re-syncing canonical aliases", "multisite_alias", aliases},
	} {
		if err := d.setDomains(ctx, tx, step.table, step.rows); err != nil {
			return fail(step.what, err)
		}
	}
	for i := range e.Aliases {
		a := &e.Aliases[i]
		if a.Op != opInsert {
			continue
		}
		id, err := d.insertAlias(ctx, tx, aliasValues{SiteID: a.SiteID, Domain: a.After, Canonical: a.Canonical, Redirect: a.Redirect})
		if err != nil {
			return fail("creating canonical aliases", err)
		}
		a.ID = id
	}
	return nil
}

// wrapWrite explains a failed write; a UNIQUE violation means a clash the
// checks could not see (a concurrent change, an inconsistent alias table).
func (s *Store) wrapWrite(err error) error {
	m := err.Error()
	// MySQL: ER_DUP_ENTRY, ER_DUP_ENTRY_WITH_KEY_NAME.
	if strings.Contains(m, "UNIQUE constraint failed") || strings.Contains(m, "SQLSTATE 23505") || strings.Contains(m, "duplicate key") ||
		isMySQLError(err, 1062, 1586) {
		return fmt.Errorf("a domain is already in use: %w", err)
	}
	if s.cfg.Driver == SQLite && (strings.Contains(m, "readonly database") || strings.Contains(m, "SQLITE_READONLY")) {
		return fmt.Errorf("cannot write SQLite database %s: the file or its folder is not writable by this user (SQLite writes a journal next to it); run siteplex as the file's owner", s.cfg.Path)
	}
	return s.wrap(err)
}
