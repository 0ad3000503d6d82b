package tui

import "github.com/charmbracelet/bubbles/key"

// KeyMap holds every key of the UI (docs/tui.md, "Keys"). The footer and the full help
// are rendered from it, and Update dispatches with key.Matches, so keys and
// help never drift apart. setState enables only the keys that work in the
// current state.
type KeyMap struct {
	Up, Down, Top, Bottom, HalfDown, HalfUp key.Binding
	// Move is Up and Down together, for the footer only.
	Move                           key.Binding
	PageDown, PageUp               key.Binding
	Filter, Accept, Clear          key.Binding
	Use, Hosts, HostsAll           key.Binding
	StartStop, Restart, Reload     key.Binding
	NextPane, PrevPane, Follow     key.Binding
	Search, SearchNext, SearchPrev key.Binding
	Open, Help, Quit, ForceQuit    key.Binding
	Yes, No                        key.Binding
}

// DefaultKeyMap returns the keys of docs/tui.md, "Keys".
func DefaultKeyMap() KeyMap {
	return KeyMap{
		Up:         key.NewBinding(key.WithKeys("k", "up"), key.WithHelp("↑/k", "up")),
		Down:       key.NewBinding(key.WithKeys("j", "down"), key.WithHelp("↓/j", "down")),
		Move:       key.NewBinding(key.WithKeys("up", "down", "j", "k"), key.WithHelp("↑↓", "move")),
		Top:        key.NewBinding(key.WithKeys("g", "home"), key.WithHelp("g", "top")),
		Bottom:     key.NewBinding(key.WithKeys("G", "end"), key.WithHelp("G", "bottom")),
		HalfDown:   key.NewBinding(key.WithKeys("ctrl+d"), key.WithHelp("ctrl+d", "½ page down")),
		HalfUp:     key.NewBinding(key.WithKeys("ctrl+u"), key.WithHelp("ctrl+u", "½ page up")),
		PageDown:   key.NewBinding(key.WithKeys("pgdown"), key.WithHelp("pgdn", "pane down")),
		PageUp:     key.NewBinding(key.WithKeys("pgup"), key.WithHelp("pgup", "pane up")),
		Filter:     key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter")),
		Accept:     key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "accept")),
		Clear:      key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "clear/back")),
		Use:        key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "use")),
		Hosts:      key.NewBinding(key.WithKeys("h"), key.WithHelp("h", "hosts")),
		HostsAll:   key.NewBinding(key.WithKeys("H"), key.WithHelp("H", "hosts all")),
		StartStop:  key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "start/stop")),
		Restart:    key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "restart")),
		Reload:     key.NewBinding(key.WithKeys("R"), key.WithHelp("R", "reload")),
		NextPane:   key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "pane")),
		PrevPane:   key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "pane back")),
		Follow:     key.NewBinding(key.WithKeys("f"), key.WithHelp("f", "follow logs")),
		Search:     key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "search logs")),
		SearchNext: key.NewBinding(key.WithKeys("n"), key.WithHelp("n/N", "match")),
		SearchPrev: key.NewBinding(key.WithKeys("N"), key.WithHelp("N", "previous match")),
		Open:       key.NewBinding(key.WithKeys("o"), key.WithHelp("o", "open")),
		Help:       key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		Quit:       key.NewBinding(key.WithKeys("q"), key.WithHelp("q", "quit")),
		ForceQuit:  key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit now")),
		Yes:        key.NewBinding(key.WithKeys("y", "Y", "enter"), key.WithHelp("y", "yes")),
		No:         key.NewBinding(key.WithKeys("n", "N", "esc", "q"), key.WithHelp("n", "no")),
	}
}

// mode is what the keyboard currently drives.
type mode int

const (
	modeNormal  mode = iota // the table or the pane has the keys
	modeFilter              // typing the site filter
	modeSearch              // typing a log search
	modeConfirm             // the quit question
)

// ShortHelp is the footer line.
func (k KeyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.Yes, k.No, k.Accept, k.Clear, k.Move, k.Filter, k.Search, k.SearchNext,
		k.Use, k.Hosts, k.StartStop, k.Restart, k.NextPane, k.Help, k.Quit}
}

// FullHelp is the `?` view, in columns.
func (k KeyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.Up, k.Down, k.Top, k.Bottom, k.HalfDown, k.HalfUp},
		{k.Filter, k.Accept, k.Clear, k.Use, k.Open, k.Reload},
		{k.Hosts, k.HostsAll, k.StartStop, k.Restart, k.Help, k.Quit},
		{k.NextPane, k.PrevPane, k.PageUp, k.PageDown, k.Follow, k.Search, k.SearchNext, k.ForceQuit},
	}
}
