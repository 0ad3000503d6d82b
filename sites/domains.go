package sites

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// MaxDomainLen is the length of django_site.domain and
// multisite_alias.domain (varchar(100)). PostgreSQL refuses longer values;
// SQLite silently stores them, so siteplex checks before writing.
const MaxDomainLen = 100

// DomainMode says where `siteplex domains` takes the new domains from.
type DomainMode int

const (
	// RewriteDomains sets django_site.domain to the domain format applied to
	// the multisite-plus slug (what django-multisite-plus's REWRITE_DOMAINS
	// does at startup).
	RewriteDomains DomainMode = iota
	// RestoreDomains puts django_multisite_plus_site.real_domain back.
	RestoreDomains
)

func (m DomainMode) String() string {
	switch m {
	case RewriteDomains:
		return "rewrite"
	case RestoreDomains:
		return "restore"
	}
	return "domain mode " + strconv.Itoa(int(m))
}

// DomainOptions configure Store.ChangeDomains.
type DomainOptions struct {
	Mode DomainMode
	// Format is applied to each slug in RewriteDomains mode.
	Format DomainFormat
	// DryRun computes and checks everything, then writes nothing.
	DryRun bool
}

// DomainChange is one multisite-plus site considered by a rewrite or
// restore. Old == New means the site already had the wanted domain.
type DomainChange struct {
	ID   int64  `json:"id"`
	Slug string `json:"slug"`
	Old  string `json:"old"`
	New  string `json:"new"`
}

// Changed reports whether the site's domain is (or would be) written.
func (c DomainChange) Changed() bool { return c.Old != c.New }

// SkippedSite is a site a rewrite or restore left alone, and why.
type SkippedSite struct {
	ID     int64  `json:"id"`
	Domain string `json:"domain"`
	Reason string `json:"reason"`
}

// DomainReport says what ChangeDomains did (or, with DryRun, would do).
type DomainReport struct {
	Mode   string `json:"mode"`
	Format string `json:"format,omitempty"`
	DryRun bool   `json:"dry_run"`
	// Changes lists every site with a multisite-plus row that got a new
	// domain or already had it, by id.
	Changes []DomainChange `json:"changes"`
	// Skipped lists the sites left alone: no multisite-plus row, an empty
	// slug (rewrite) or an empty real_domain (restore).
	Skipped []SkippedSite `json:"skipped"`
	// AliasTable is true when multisite_alias exists; the counts below are
	// canonical aliases re-synced to their site's domain and canonical
	// aliases created for sites that had none.
	AliasTable     bool `json:"alias_table"`
	AliasesUpdated int  `json:"aliases_updated"`
	AliasesCreated int  `json:"aliases_created"`
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
	// "domain", "new domain", "alias" or "own alias".
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
	Mode     DomainMode
	Problems []string
}

func (e *InvalidDomainsError) Error() string {
	fix := "fix the slugs in django_multisite_plus_site or choose another --format"
	if e.Mode == RestoreDomains {
		fix = "fix real_domain in django_multisite_plus_site"
	}
	return fmt.Sprintf("refusing to %s domains, nothing was changed:\n  %s\n%s",
		e.Mode, strings.Join(e.Problems, "\n  "), fix)
}

// NoPlusTableError means the database has no django_multisite_plus_site
// table, so there are no slugs or real domains to work from.
type NoPlusTableError struct{ DB string }

func (e *NoPlusTableError) Error() string {
	return fmt.Sprintf("no django_multisite_plus_site table in %s: `siteplex domains` works on django-multisite-plus sites only; nothing was changed", e.DB)
}

// domainRow is one django_site row with its multisite-plus columns.
type domainRow struct {
	id              int64
	domain          string
	plus            bool
	slug, real      string
	canonical       string
	hasCanonical    bool
	aliases         []string // non-canonical aliases
	newDomain       string
	changes, create bool
}

// ChangeDomains rewrites (or restores) django_site.domain for every site
// with a django_multisite_plus_site row, re-syncs the canonical
// multisite_alias rows and creates missing ones, all in one transaction
// (reference: django-multisite.md §5.6). last_updated_at is never touched.
//
// New domains are checked before anything is written: an invalid hostname
// or one longer than 100 characters gives *InvalidDomainsError, a domain
// already used by another site (as its domain or an alias) gives
// *DomainClashError. Any error rolls the transaction back, so every row is
// as it was. The Store must have been opened writable (Open(ctx, d, true))
// unless DryRun is set.
func (s *Store) ChangeDomains(ctx context.Context, opts DomainOptions) (*DomainReport, error) {
	t, err := s.Tables(ctx)
	if err != nil {
		return nil, err
	}
	if !t.Site {
		return nil, &NoSiteTableError{DB: s.cfg.Display()}
	}
	if !t.Plus {
		return nil, &NoPlusTableError{DB: s.cfg.Display()}
	}
	rep := &DomainReport{Mode: opts.Mode.String(), DryRun: opts.DryRun, AliasTable: t.Alias,
		Changes: []DomainChange{}, Skipped: []SkippedSite{}}
	if opts.Mode == RewriteDomains {
		rep.Format = opts.Format.String()
	}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, s.wrap(err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = tx.Rollback()
		}
	}()
	if s.cfg.Driver == SQLite && !opts.DryRun {
		// Take SQLite's write lock now rather than at the first UPDATE, so
		// a concurrent writer makes us wait (busy_timeout) instead of
		// failing half-way with SQLITE_BUSY.
		if _, err := tx.ExecContext(ctx, `UPDATE django_site SET domain = domain WHERE 0 = 1`); err != nil {
			return nil, s.wrapWrite(err)
		}
	}
	rows, err := s.readDomainRows(ctx, tx, t.Alias, !opts.DryRun)
	if err != nil {
		return nil, err
	}
	if err := planDomains(rows, opts, rep); err != nil {
		return nil, err
	}
	if opts.DryRun {
		return rep, nil
	}
	if err := s.writeDomains(ctx, tx, rows, t.Alias); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("committing the domain changes (nothing was changed): %w", s.wrap(err))
	}
	committed = true
	return rep, nil
}

// readDomainRows reads django_site, the multisite-plus columns and the
// aliases inside tx. On PostgreSQL the django_site rows are locked when
// lock is set.
func (s *Store) readDomainRows(ctx context.Context, tx *sql.Tx, aliasTable, lock bool) ([]*domainRow, error) {
	q := `SELECT s.id, s.domain, m.site_id, m.slug, m.real_domain
FROM django_site s LEFT JOIN django_multisite_plus_site m ON m.site_id = s.id ORDER BY s.id`
	if s.cfg.Driver == Postgres && lock {
		q += ` FOR UPDATE OF s`
	}
	rs, err := tx.QueryContext(ctx, q)
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
	as, err := tx.QueryContext(ctx, `SELECT site_id, domain, is_canonical FROM multisite_alias ORDER BY site_id, domain`)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer as.Close()
	for as.Next() {
		var id int64
		var domain string
		var canon sql.NullBool
		if err := as.Scan(&id, &domain, &canon); err != nil {
			return nil, s.wrap(err)
		}
		r, ok := byID[id]
		if !ok {
			continue
		}
		if canon.Valid && canon.Bool {
			r.canonical, r.hasCanonical = domain, true
		} else {
			r.aliases = append(r.aliases, domain)
		}
	}
	if err := as.Err(); err != nil {
		return nil, s.wrap(err)
	}
	return list, nil
}

// planDomains decides each row's new domain, checks validity and clashes,
// and fills rep. It does no I/O.
func planDomains(rows []*domainRow, opts DomainOptions, rep *DomainReport) error {
	var problems []string
	for _, r := range rows {
		r.newDomain = r.domain
		switch {
		case !r.plus:
			rep.Skipped = append(rep.Skipped, SkippedSite{ID: r.id, Domain: r.domain, Reason: "no django-multisite-plus row"})
			continue
		case opts.Mode == RewriteDomains && r.slug == "":
			rep.Skipped = append(rep.Skipped, SkippedSite{ID: r.id, Domain: r.domain, Reason: "empty slug"})
			continue
		case opts.Mode == RestoreDomains && r.real == "":
			rep.Skipped = append(rep.Skipped, SkippedSite{ID: r.id, Domain: r.domain, Reason: "empty real_domain"})
			continue
		}
		nd := r.real
		if opts.Mode == RewriteDomains {
			nd = opts.Format.Apply(r.slug, r.id)
		}
		ref := SiteRef{ID: r.id, Slug: r.slug, Domain: r.domain}
		if _, err := Hostname(nd); err != nil {
			problems = append(problems, fmt.Sprintf("%s: new domain: %v", ref, err))
			continue
		}
		if len(nd) > MaxDomainLen {
			problems = append(problems, fmt.Sprintf("%s: new domain %q is %d characters; django_site.domain holds at most %d", ref, nd, len(nd), MaxDomainLen))
			continue
		}
		r.newDomain = nd
		rep.Changes = append(rep.Changes, DomainChange{ID: r.id, Slug: r.slug, Old: r.domain, New: nd})
	}
	if len(problems) > 0 {
		return &InvalidDomainsError{Mode: opts.Mode, Problems: problems}
	}
	if err := checkClashes(rows); err != nil {
		return err
	}
	for _, r := range rows {
		r.changes = r.newDomain != r.domain
		if !rep.AliasTable || r.newDomain == "" {
			continue
		}
		switch {
		case !r.hasCanonical:
			r.create = true
			rep.AliasesCreated++
		case r.canonical != r.newDomain:
			rep.AliasesUpdated++
		}
	}
	return nil
}

// checkClashes finds a changed site whose new domain (compared like
// Django does, case-insensitively) is another site's final domain, or any
// site's non-canonical alias.
func checkClashes(rows []*domainRow) error {
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
	for _, owner := range rows {
		for _, a := range owner.aliases {
			r, ok := final[strings.ToLower(a)]
			if !ok || r.newDomain == r.domain {
				continue
			}
			as := "alias"
			if r == owner {
				as = "own alias"
			}
			return &DomainClashError{Domain: r.newDomain, Site: ref(r), Other: ref(owner), As: as}
		}
	}
	return nil
}

// writeDomains runs the UPDATEs and INSERTs of reference §5.6 in tx. Changed
// sites first get a placeholder domain so that two sites can swap domains
// without tripping the UNIQUE constraints, which PostgreSQL and SQLite
// check row by row.
func (s *Store) writeDomains(ctx context.Context, tx *sql.Tx, rows []*domainRow, aliasTable bool) error {
	exec := func(what, q string, args ...any) error {
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("%s (rolled back, nothing was changed): %w", what, s.wrapWrite(err))
		}
		return nil
	}
	var changed []*domainRow
	for _, r := range rows {
		if r.changes {
			changed = append(changed, r)
		}
	}
	// In chunks, to stay far below both engines' limits on parameters.
	const chunk = 400
	for lo := 0; lo < len(changed); lo += chunk {
		part := changed[lo:min(lo+chunk, len(changed))]
		ids, pairIDs := make([]string, len(part)), make([]string, len(part))
		idArgs, pairArgs := make([]any, len(part)), make([]any, 0, 2*len(part))
		var cases strings.Builder
		for i, r := range part {
			ids[i], idArgs[i] = "$"+strconv.Itoa(i+1), r.id
			pairIDs[i] = "$" + strconv.Itoa(2*i+1)
			fmt.Fprintf(&cases, " WHEN $%d THEN $%d", 2*i+1, 2*i+2)
			pairArgs = append(pairArgs, r.id, r.newDomain)
		}
		in := strings.Join(ids, ", ")
		// Placeholders first ('siteplex-swap-<id>.invalid' cannot be a
		// real domain), then the new domains.
		if err := exec("updating django_site", `UPDATE django_site SET domain = 'siteplex-swap-' || id || '.invalid' WHERE id IN (`+in+`)`, idArgs...); err != nil {
			return err
		}
		if err := exec("updating django_site", `UPDATE django_site SET domain = CASE id`+cases.String()+` END WHERE id IN (`+strings.Join(pairIDs, ", ")+`)`, pairArgs...); err != nil {
			return err
		}
	}
	if !aliasTable {
		return nil
	}
	// Alias.canonical.sync_many: canonical aliases follow their site. The
	// ones that change get a placeholder first, so that aliases may swap
	// names (a stale canonical alias may hold another site's new domain).
	if err := exec("re-syncing canonical aliases", `UPDATE multisite_alias
SET domain = 'siteplex-swap-' || site_id || '.invalid'
WHERE is_canonical = TRUE
  AND domain <> (SELECT s.domain FROM django_site s WHERE s.id = multisite_alias.site_id)
  AND (SELECT s.domain FROM django_site s WHERE s.id = multisite_alias.site_id) <> ''`); err != nil {
		return err
	}
	if err := exec("re-syncing canonical aliases", `UPDATE multisite_alias
SET domain = (SELECT s.domain FROM django_site s WHERE s.id = multisite_alias.site_id)
WHERE is_canonical = TRUE
  AND domain <> (SELECT s.domain FROM django_site s WHERE s.id = multisite_alias.site_id)
  AND (SELECT s.domain FROM django_site s WHERE s.id = multisite_alias.site_id) <> ''`); err != nil {
		return err
	}
	// Alias.canonical.sync_missing: every site gets a canonical alias.
	return exec("creating canonical aliases", `INSERT INTO multisite_alias (domain, site_id, is_canonical, redirect_to_canonical)
SELECT s.domain, s.id, TRUE, TRUE FROM django_site s
WHERE s.domain <> '' AND NOT EXISTS
  (SELECT 1 FROM multisite_alias a WHERE a.site_id = s.id AND a.is_canonical = TRUE)`)
}

// wrapWrite explains a failed write; a UNIQUE violation means a clash the
// checks could not see (a concurrent change, an inconsistent alias table).
func (s *Store) wrapWrite(err error) error {
	m := err.Error()
	if strings.Contains(m, "UNIQUE constraint failed") || strings.Contains(m, "SQLSTATE 23505") || strings.Contains(m, "duplicate key") {
		return fmt.Errorf("a domain is already in use: %w", err)
	}
	if s.cfg.Driver == SQLite && (strings.Contains(m, "readonly database") || strings.Contains(m, "SQLITE_READONLY")) {
		return fmt.Errorf("cannot write SQLite database %s: the file or its folder is not writable by this user (SQLite writes a journal next to it); run siteplex as the file's owner", s.cfg.Path)
	}
	return s.wrap(err)
}
