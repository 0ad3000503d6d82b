package tui

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/siteplex/siteplex/devproxy"
	"github.com/siteplex/siteplex/sites"
)

// manySites makes n multisite-plus sites (slugs s00001…), finalized with
// the {slug}.localhost format and forced the forced one (0: none).
func manySites(n int, forced int64) []sites.Site {
	list := make([]sites.Site, n)
	for i := range list {
		id := int64(i + 1)
		list[i] = sites.Site{ID: id, Name: fmt.Sprintf("Site number %d", id), Domain: fmt.Sprintf("site-%05d.example.com", id),
			PlusRow: true, PlusSlug: fmt.Sprintf("s%05d", id), Enabled: true}
	}
	df, _ := sites.ParseDomainFormat("{slug}.localhost")
	sites.Finalize(list, df, forced)
	return list
}

// bigModel is a model showing n sites at 120×40, with a full log buffer
// and request history, like a long day with a big project.
func bigModel(tb testing.TB, n int) *Model {
	tb.Helper()
	list := manySites(n, 2)
	st := devproxy.Status{Listen: []string{"127.0.0.1:80"}, Mode: devproxy.PerSite, ForcedSiteID: 2}
	for i := range list {
		state := devproxy.Stopped
		if i%7 == 0 {
			state = devproxy.Running
		}
		st.Sites = append(st.Sites, devproxy.SiteStatus{ID: list[i].ID, Slug: list[i].Slug, State: state, Port: 40000 + i%20000, Requests: int64(i)})
	}
	m := New(Options{Engine: newFakeEngine(nil), Renderer: asciiRenderer(), NoTick: true, Now: func() time.Time { return fixedNow }})
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	m.Update(startedMsg{})
	m.Update(snapshotMsg{sites: list, status: st, addrs: st.Listen})
	hs := make(map[int64]HostsState, n)
	for i := range list {
		hs[list[i].ID] = HostsState(1 + i%3)
	}
	m.Update(hostsMsg{states: hs})
	slug := list[0].Slug
	lines := make([]devproxy.LogLine, maxLogLines)
	for i := range lines {
		lines[i] = devproxy.LogLine{Time: fixedNow.Add(time.Duration(i) * time.Millisecond), Site: slug,
			Text: fmt.Sprintf("[25/Nov/2026 19:02:%02d] \"GET /page/%d/ HTTP/1.1\" 200 %d", i%60, i, 1000+i)}
	}
	m.Update(logsMsg{slug: slug, lines: lines})
	reqs := make([]devproxy.RequestRecord, maxRequests)
	for i := range reqs {
		reqs[i] = devproxy.RequestRecord{Time: fixedNow, Site: list[i%10].Slug, Method: "GET", Path: fmt.Sprintf("/page/%d/", i), Status: 200, Duration: time.Millisecond, Bytes: 1234}
	}
	m.Update(requestsMsg{reqs: reqs})
	return m
}

// BenchmarkKeystroke10k is one movement key's Update plus the View that
// follows, with 10,000 sites (target: under 16 ms).
func BenchmarkKeystroke10k(b *testing.B) {
	m := bigModel(b, 10000)
	keys := []tea.KeyMsg{keyMsg("j"), keyMsg("ctrl+d"), keyMsg("k"), keyMsg("G"), keyMsg("g")}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Update(keys[i%len(keys)])
		_ = m.View()
	}
}

// BenchmarkFilterKeystroke10k is one key typed into the site filter
// (refiltering all 10,000 sites) plus the View (target: under 16 ms).
func BenchmarkFilterKeystroke10k(b *testing.B) {
	m := bigModel(b, 10000)
	m.Update(keyMsg("/"))
	for _, k := range []string{"s", "0", "1"} {
		m.Update(keyMsg(k))
	}
	keys := []tea.KeyMsg{keyMsg("2"), keyMsg("backspace")}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Update(keys[i%2])
		_ = m.View()
	}
}

// BenchmarkLogBatch is a batch of 500 log lines of the selected site
// arriving while following, plus the View.
func BenchmarkLogBatch(b *testing.B) {
	m := bigModel(b, 10000)
	evs := make([]devproxy.Event, 500)
	b.ReportAllocs()
	b.ResetTimer()
	t := fixedNow.Add(time.Hour)
	for i := 0; i < b.N; i++ {
		for j := range evs {
			t = t.Add(time.Microsecond)
			evs[j] = devproxy.Event{Kind: devproxy.EventLog, Log: devproxy.LogLine{Time: t, Site: m.logSlug, Text: "GET /static/site.css 200"}}
		}
		m.Update(eventsMsg{events: evs})
		_ = m.View()
	}
}

// BenchmarkMemory10k reports the heap the UI holds for 10,000 sites with
// full log and request buffers (target: under 80 MB), as heap-MB.
func BenchmarkMemory10k(b *testing.B) {
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		m := bigModel(b, 10000)
		for j := 0; j < 50; j++ { // a few screens' worth of use
			m.Update(keyMsg("j"))
			_ = m.View()
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(m)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MB")
	}
}

// TestMemory10k is the memory target as a plain check of the model's own
// heap (generous, so it never flakes): 10,000 sites stay far below 80 MB.
func TestMemory10k(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 10,000 sites")
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	m := bigModel(t, 10000)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(m)
	if mb := float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20); mb > 80 {
		t.Errorf("the model holds %.1f MB for 10,000 sites, over 80 MB", mb)
	} else {
		t.Logf("the model holds %.1f MB for 10,000 sites", mb)
	}
}

// TestMemoryWithEngine10k measures the heap of the real engine (started
// on a free loopback port, 10,000 sites, no processes) plus the UI's model
// over it: what `siteplex` holds for a 10,000-site project.
func TestMemoryWithEngine10k(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 10,000 sites")
	}
	list := manySites(10000, 0)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	e, err := devproxy.New(devproxy.Config{
		Listen:    []string{"127.0.0.1:0"},
		LoadSites: func(ctx context.Context) ([]sites.Site, error) { return append([]sites.Site(nil), list...), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	m := New(Options{Engine: e, Renderer: asciiRenderer(), NoTick: true, NoStart: true})
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	m.Update(snapshotMsg{sites: e.Sites(), status: e.Status(), addrs: e.Addrs()})
	for j := 0; j < 50; j++ {
		m.Update(keyMsg("j"))
		_ = m.View()
	}
	if len(m.sites) != 10000 {
		t.Fatalf("%d sites", len(m.sites))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(m)
	mb := float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
	t.Logf("engine + UI hold %.1f MB of heap for 10,000 sites (%.1f MB from the OS in all)", mb, float64(after.Sys)/(1<<20))
	if mb > 80 {
		t.Errorf("engine + UI hold %.1f MB for 10,000 sites, over 80 MB", mb)
	}
}
