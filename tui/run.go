package tui

import (
	"context"
	"fmt"
	"io"

	tea "github.com/charmbracelet/bubbletea"
)

// Run shows the UI on in/out until the user quits or ctx ends. The mouse
// is not captured, so the terminal's own selection and copy keep working.
// The caller owns the engine: it closes it after Run returns.
func Run(ctx context.Context, opt Options, in io.Reader, out io.Writer) error {
	if opt.Context == nil {
		opt.Context = ctx
	}
	m := New(opt)
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(out), tea.WithAltScreen())
	final, err := p.Run()
	if fm, ok := final.(*Model); ok {
		fm.Unsubscribe()
	} else {
		m.Unsubscribe()
	}
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("terminal UI: %w", err)
	}
	return nil
}
