package tui

import (
	"time"

	"github.com/siteplex/siteplex/devproxy"
	"github.com/siteplex/siteplex/sites"
)

// Messages. Every tea.Cmd of the UI returns one of these.
type (
	// subscribedMsg carries the engine's event stream.
	subscribedMsg struct {
		ch    <-chan devproxy.Event
		unsub func()
	}
	// eventsMsg is a batch of engine events; closed means the stream ended.
	eventsMsg struct {
		events []devproxy.Event
		closed bool
	}
	// startedMsg: Engine.Start returned.
	startedMsg struct{ err error }
	// retryStartMsg: time to call Engine.Start again.
	retryStartMsg struct{}
	// snapshotMsg: the engine's sites, status and addresses.
	snapshotMsg struct {
		sites  []sites.Site
		status devproxy.Status
		addrs  []string
	}
	// statusMsg: a fresh Engine.Status.
	statusMsg struct{ status devproxy.Status }
	// reloadedMsg: Engine.Reload returned; auto is true for the retries
	// the UI makes on its own while there are no sites.
	reloadedMsg struct {
		err  error
		auto bool
	}
	// retryReloadMsg: time to call Engine.Reload again.
	retryReloadMsg struct{}
	// hostsMsg: the hosts file's state per site id.
	hostsMsg struct {
		states map[int64]HostsState
		err    error
	}
	// logsMsg: the last lines of a site's output.
	logsMsg struct {
		slug  string
		lines []devproxy.LogLine
	}
	// requestsMsg: the last requests of every site.
	requestsMsg struct{ reqs []devproxy.RequestRecord }
	// actionMsg: a user action (start, stop, use, hosts…) finished.
	actionMsg struct {
		kind   actionKind
		slug   string
		siteID int64
		err    error
	}
	// sudoDoneMsg: the suspended `sudo siteplex hosts …` command ended.
	sudoDoneMsg struct {
		command string
		err     error
	}
	// tickMsg: the once-a-second clock.
	tickMsg time.Time
	// clearStatusMsg expires the status line message with the same id.
	clearStatusMsg struct{ id int }
)

// actionKind names a user action, for its result message.
type actionKind int

const (
	actStart actionKind = iota
	actStop
	actRestart
	actUse
	actReload
	actHostsApply
	actHostsRemove
	actOpen
)

func (k actionKind) String() string {
	switch k {
	case actStart:
		return "start"
	case actStop:
		return "stop"
	case actRestart:
		return "restart"
	case actUse:
		return "use"
	case actReload:
		return "reload"
	case actHostsApply:
		return "hosts apply"
	case actHostsRemove:
		return "hosts remove"
	case actOpen:
		return "open"
	}
	return "action"
}
