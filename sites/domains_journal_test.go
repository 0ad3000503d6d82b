package sites

import (
	"database/sql"
	"testing"
)

// TestUndo: the journal's rewrites are undone newest first, each row only
// where it holds what the rewrite wrote; a rewrite that never committed
// (its rows still hold the old values) is nothing to undo; a row changed
// since blocks the older rewrites of it too.
func TestUndo(t *testing.T) {
	canon := sql.NullBool{Valid: true, Bool: true}
	j := &domainJournal{Version: 1, Entries: []journalEntry{
		{Sites: []journalSite{{ID: 1, Before: "www.a", After: "a.localhost"}, {ID: 2, Before: "www.b", After: "b.localhost"}},
			Aliases: []journalAlias{{ID: 10, Op: opUpdate, SiteID: 1, Before: "www.a", After: "a.localhost"},
				{ID: 11, Op: opInsert, SiteID: 2, After: "b.localhost", Canonical: true, Redirect: true}}},
		{Sites: []journalSite{{ID: 1, Before: "a.localhost", After: "a.test"}, {ID: 2, Before: "b.localhost", After: "b.test"}},
			Aliases: []journalAlias{{ID: 10, Op: opUpdate, SiteID: 1, Before: "a.localhost", After: "a.test"},
				{ID: 11, Op: opUpdate, SiteID: 2, Before: "b.localhost", After: "b.test"}}},
		// The last rewrite never committed: its rows hold "before".
		{Sites: []journalSite{{ID: 1, Before: "a.test", After: "a.other"}}},
	}}
	tests := []struct {
		name        string
		cur         curState
		wantSites   map[int64]string
		wantAliases map[int64]string
		changed     int
	}{
		{"all as the rewrites left them",
			curState{sites: map[int64]string{1: "a.test", 2: "b.test", 3: "c"},
				aliases: map[int64]aliasRow{10: {id: 10, siteID: 1, domain: "a.test", canonical: canon}, 11: {id: 11, siteID: 2, domain: "b.test", canonical: canon}}},
			map[int64]string{1: "www.a", 2: "www.b", 3: "c"}, map[int64]string{10: "www.a"}, 0},
		{"site 2 changed by hand after the rewrites",
			curState{sites: map[int64]string{1: "a.test", 2: "mine.example"},
				aliases: map[int64]aliasRow{10: {id: 10, siteID: 1, domain: "a.test", canonical: canon}, 11: {id: 11, siteID: 2, domain: "b.test", canonical: canon}}},
			map[int64]string{1: "www.a", 2: "mine.example"}, map[int64]string{10: "www.a"}, 1},
		{"the created alias renamed by hand",
			curState{sites: map[int64]string{1: "a.test", 2: "b.test"},
				aliases: map[int64]aliasRow{10: {id: 10, siteID: 1, domain: "a.test", canonical: canon}, 11: {id: 11, siteID: 2, domain: "hand.example", canonical: canon}}},
			map[int64]string{1: "www.a", 2: "www.b"}, map[int64]string{10: "www.a", 11: "hand.example"}, 1},
		{"already restored",
			curState{sites: map[int64]string{1: "www.a", 2: "www.b"},
				aliases: map[int64]aliasRow{10: {id: 10, siteID: 1, domain: "www.a", canonical: canon}}},
			map[int64]string{1: "www.a", 2: "www.b"}, map[int64]string{10: "www.a"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			final, changed := undo(j, tt.cur)
			for id, w := range tt.wantSites {
				if final.sites[id] != w {
					t.Errorf("site %d → %q, want %q", id, final.sites[id], w)
				}
			}
			if len(final.aliases) != len(tt.wantAliases) {
				t.Errorf("aliases after: %v, want %v", final.aliases, tt.wantAliases)
			}
			for id, w := range tt.wantAliases {
				if final.aliases[id].domain != w {
					t.Errorf("alias %d → %q, want %q", id, final.aliases[id].domain, w)
				}
			}
			if len(changed) != tt.changed {
				t.Errorf("changed = %+v, want %d", changed, tt.changed)
			}
			if len(tt.cur.sites) > 0 && tt.cur.sites[1] != "a.test" && tt.cur.sites[1] != "www.a" {
				t.Error("undo changed its input")
			}
		})
	}
}
