package tui

import (
	"context"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/siteplex/siteplex/devproxy"
	"github.com/siteplex/siteplex/sites"
)

// Commands: all I/O happens in these, never in Update or View.

func tick() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return tickMsg(t) })
}

func (m *Model) cmdSubscribe() tea.Cmd {
	e := m.opt.Engine
	return func() tea.Msg {
		ch, unsub := e.Subscribe()
		return subscribedMsg{ch: ch, unsub: unsub}
	}
}

// waitEvents waits for the next event and takes every event already
// queued with it (up to eventBatch), so a chatty process costs one
// message per batch, not one per line.
func waitEvents(ch <-chan devproxy.Event) tea.Cmd {
	return func() tea.Msg {
		ev, ok := <-ch
		if !ok {
			return eventsMsg{closed: true}
		}
		evs := []devproxy.Event{ev}
		for len(evs) < eventBatch {
			select {
			case ev, ok := <-ch:
				if !ok {
					return eventsMsg{events: evs, closed: true}
				}
				evs = append(evs, ev)
			default:
				return eventsMsg{events: evs}
			}
		}
		return eventsMsg{events: evs}
	}
}

func (m *Model) cmdStart() tea.Cmd {
	e, ctx := m.opt.Engine, m.ctx
	return func() tea.Msg { return startedMsg{err: e.Start(ctx)} }
}

func (m *Model) cmdSnapshot() tea.Cmd {
	e := m.opt.Engine
	return func() tea.Msg {
		return snapshotMsg{sites: e.Sites(), status: e.Status(), addrs: e.Addrs()}
	}
}

func (m *Model) cmdStatus() tea.Cmd {
	e := m.opt.Engine
	return func() tea.Msg { return statusMsg{status: e.Status()} }
}

func (m *Model) cmdReload(auto bool) tea.Cmd {
	e, ctx := m.opt.Engine, m.ctx
	return func() tea.Msg { return reloadedMsg{err: e.Reload(ctx), auto: auto} }
}

func (m *Model) cmdHostsStatus() tea.Cmd {
	h, ctx, list := m.opt.Hosts, m.ctx, m.sites
	if h == nil || len(list) == 0 {
		return nil
	}
	return func() tea.Msg {
		st, err := h.Status(ctx, list)
		return hostsMsg{states: st, err: err}
	}
}

func (m *Model) cmdLogs(slug string) tea.Cmd {
	e := m.opt.Engine
	return func() tea.Msg { return logsMsg{slug: slug, lines: e.Logs(slug, maxLogLines)} }
}

func (m *Model) cmdRequests() tea.Cmd {
	e := m.opt.Engine
	return func() tea.Msg { return requestsMsg{reqs: e.Requests(maxRequests)} }
}

func (m *Model) cmdAction(kind actionKind, s *sites.Site, fn func(ctx context.Context) error) tea.Cmd {
	ctx := m.ctx
	am := actionMsg{kind: kind}
	if s != nil {
		am.slug, am.siteID = s.Slug, s.ID
	}
	return func() tea.Msg {
		am.err = fn(ctx)
		return am
	}
}

func (m *Model) setStatus(text string, isErr bool) tea.Cmd {
	m.statusID++
	m.statusText, m.statusErr = text, isErr
	if isErr {
		return nil // errors stay until something replaces them
	}
	id := m.statusID
	return tea.Tick(statusExpiry, func(time.Time) tea.Msg { return clearStatusMsg{id: id} })
}
