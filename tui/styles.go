package tui

import (
	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/lipgloss"

	"github.com/siteplex/siteplex/devproxy"
)

// Styles is every style the UI uses, built once from a renderer. View code
// never builds styles itself; without colour (NO_COLOR, a dumb terminal or
// tests) the renderer drops them and the text still carries the meaning
// (markers, glyphs).
type Styles struct {
	// Plain is no style at all (the base of table cells).
	Plain lipgloss.Style

	Header, HeaderTitle, HeaderDim, HeaderWarn lipgloss.Style

	TableHeader, TableHeaderFocused lipgloss.Style
	Selected, Disabled, Problem     lipgloss.Style
	Forced, Cursor                  lipgloss.Style
	Match                           lipgloss.Style

	// StateStyles colours the state cell; see stateCell for the glyphs.
	StateStyles                  map[devproxy.State]lipgloss.Style
	HostsOK, HostsSome, HostsOff lipgloss.Style

	Tab, TabActive, TabFocused, Rule, PaneInfo lipgloss.Style

	LogTime, LogSystem, LogStderr, Dim         lipgloss.Style
	Status2xx, Status3xx, Status4xx, Status5xx lipgloss.Style

	Info, Error, Notice, Prompt, Confirm lipgloss.Style
	InfoKey                              lipgloss.Style

	Help help.Styles
}

// DefaultStyles builds the styles for r (nil: lipgloss's default renderer).
func DefaultStyles(r *lipgloss.Renderer) Styles {
	if r == nil {
		r = lipgloss.DefaultRenderer()
	}
	ns := r.NewStyle
	accent := lipgloss.AdaptiveColor{Light: "#5A3FC0", Dark: "#B4A0FF"}
	dim := lipgloss.AdaptiveColor{Light: "#8A8A8A", Dark: "#7A7A7A"}
	green := lipgloss.AdaptiveColor{Light: "#1F8A3B", Dark: "#5FD787"}
	yellow := lipgloss.AdaptiveColor{Light: "#A66F00", Dark: "#FFD75F"}
	red := lipgloss.AdaptiveColor{Light: "#C0262D", Dark: "#FF6B6B"}
	blue := lipgloss.AdaptiveColor{Light: "#1F5FBF", Dark: "#6CB6FF"}
	selBG := lipgloss.AdaptiveColor{Light: "#E4DDFB", Dark: "#3A3258"}

	s := Styles{
		Plain:       ns(),
		Header:      ns(),
		HeaderTitle: ns().Bold(true).Foreground(accent),
		HeaderDim:   ns().Foreground(dim),
		HeaderWarn:  ns().Foreground(red),

		TableHeader:        ns().Foreground(dim),
		TableHeaderFocused: ns().Foreground(accent).Bold(true),
		Selected:           ns().Background(selBG),
		Disabled:           ns().Foreground(dim),
		Problem:            ns().Foreground(red),
		Forced:             ns().Foreground(yellow).Bold(true),
		Cursor:             ns().Foreground(accent).Bold(true),
		Match:              ns().Foreground(yellow).Bold(true).Underline(true),

		StateStyles: map[devproxy.State]lipgloss.Style{
			devproxy.Running:  ns().Foreground(green),
			devproxy.Starting: ns().Foreground(yellow),
			devproxy.Crashed:  ns().Foreground(red),
			devproxy.Backoff:  ns().Foreground(red),
			devproxy.Stopped:  ns().Foreground(dim),
		},
		HostsOK:   ns().Foreground(green),
		HostsSome: ns().Foreground(yellow),
		HostsOff:  ns().Foreground(dim),

		Tab:        ns().Foreground(dim),
		TabActive:  ns().Bold(true),
		TabFocused: ns().Bold(true).Foreground(accent).Underline(true),
		Rule:       ns().Foreground(dim),
		PaneInfo:   ns().Foreground(dim),

		LogTime:   ns().Foreground(dim),
		LogSystem: ns().Foreground(blue),
		LogStderr: ns().Foreground(red),
		Dim:       ns().Foreground(dim),
		Status2xx: ns().Foreground(green),
		Status3xx: ns().Foreground(blue),
		Status4xx: ns().Foreground(yellow),
		Status5xx: ns().Foreground(red),

		Info:    ns().Foreground(green),
		Error:   ns().Foreground(red),
		Notice:  ns().Foreground(yellow),
		Prompt:  ns().Foreground(accent).Bold(true),
		Confirm: ns().Foreground(yellow).Bold(true),
		InfoKey: ns().Foreground(dim),
	}
	s.Help = help.Styles{
		ShortKey:       ns().Foreground(accent),
		ShortDesc:      ns().Foreground(dim),
		ShortSeparator: ns().Foreground(dim),
		Ellipsis:       ns().Foreground(dim),
		FullKey:        ns().Foreground(accent),
		FullDesc:       ns().Foreground(dim),
		FullSeparator:  ns().Foreground(dim),
	}
	return s
}

// stateGlyph is the state column's text for a process state, without the
// exit code (see stateCell).
func stateGlyph(st devproxy.State) string {
	switch st {
	case devproxy.Running:
		return "● running"
	case devproxy.Starting:
		return "◐ starting"
	case devproxy.Crashed:
		return "✖ crashed"
	case devproxy.Backoff:
		return "✖ backoff"
	case devproxy.Stopped:
		return "○ stopped"
	}
	return "○ " + string(st)
}

// hostsGlyph is the hosts column's text.
func hostsGlyph(h HostsState) string {
	switch h {
	case HostsAll:
		return "✓"
	case HostsSome:
		return "◑"
	case HostsNone:
		return "·"
	case HostsNA:
		return "–"
	case HostsUnknown:
		return "?"
	}
	return "?"
}
