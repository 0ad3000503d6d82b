package tui

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/siteplex/siteplex/hosts"
	"github.com/siteplex/siteplex/sites"
)

// HostsFile is the Hosts of a real hosts file, through package hosts.
type HostsFile struct {
	// File is the hosts file.
	File string
	// Project names the block (hosts.KeyFor).
	Project hosts.Key
	// BackupDir is where backups of the file go ("" = the hosts package's
	// default, the user's state folder).
	BackupDir string
	// Names lists the names of a site to write (nil: its domain).
	Names func(s *sites.Site) []string
	// SudoArgv returns the command that makes the same change as root:
	// verb is "apply" or "remove", names the host names to add or take out
	// (nil with "remove": the whole block). The names themselves are
	// passed, so the root command needs no database and no password ever
	// reaches its argv. nil: hosts.SudoArgv("hosts", verb, "--host", name, …).
	SudoArgv func(verb string, names []string) []string
}

// Path is the hosts file's path.
func (h *HostsFile) Path() string { return h.File }

func (h *HostsFile) names(s *sites.Site) []string {
	if h.Names != nil {
		return h.Names(s)
	}
	return []string{s.Domain}
}

// Status reads the block (without resolving anything) and says, per site,
// how many of its names are in it.
func (h *HostsFile) Status(ctx context.Context, list []sites.Site) (map[int64]HostsState, error) {
	data, err := os.ReadFile(h.File)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading %s: %w", h.File, err)
	}
	in := map[string]bool{}
	if len(data) > 0 {
		doc, err := hosts.Parse(data, h.Project)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", h.File, err)
		}
		for _, n := range doc.Names() {
			in[n] = true
		}
	}
	out := make(map[int64]HostsState, len(list))
	for i := range list {
		s := &list[i]
		if !s.Usable() {
			out[s.ID] = HostsNA
			continue
		}
		have, total := 0, 0
		for _, n := range h.names(s) {
			hn, err := sites.Hostname(n)
			if err != nil {
				continue
			}
			total++
			if in[hn] {
				have++
			}
		}
		switch {
		case total == 0:
			out[s.ID] = HostsNA
		case have == total:
			out[s.ID] = HostsAll
		case have > 0:
			out[s.ID] = HostsSome
		default:
			out[s.ID] = HostsNone
		}
	}
	return out, nil
}

// pick returns the usable sites named by slugs (all usable when nil).
func pick(list []sites.Site, slugs []string) []*sites.Site {
	want := map[string]bool{}
	for _, s := range slugs {
		want[s] = true
	}
	var out []*sites.Site
	for i := range list {
		if list[i].Usable() && (slugs == nil || want[list[i].Slug]) {
			out = append(out, &list[i])
		}
	}
	return out
}

// Apply adds the sites' names to the block.
func (h *HostsFile) Apply(ctx context.Context, list []sites.Site, slugs []string) error {
	var names []string
	for _, s := range pick(list, slugs) {
		names = append(names, h.names(s)...)
	}
	if len(names) == 0 {
		return errors.New("no site to write (sites with problems are never written)")
	}
	_, err := hosts.Update(ctx, h.File, hosts.Edit{Project: h.Project, Add: names}, hosts.Options{BackupDir: h.BackupDir})
	return h.wrap(err, "apply", names)
}

// Remove takes the sites' names out of the block; nil slugs removes it.
func (h *HostsFile) Remove(ctx context.Context, list []sites.Site, slugs []string) error {
	if slugs == nil {
		_, err := hosts.Update(ctx, h.File, hosts.Edit{Project: h.Project, RemoveAll: true}, hosts.Options{BackupDir: h.BackupDir})
		return h.wrap(err, "remove", nil)
	}
	var names []string
	for _, s := range pick(list, slugs) {
		names = append(names, h.names(s)...)
		names = append(names, s.Domain, s.LocalDomain)
		names = append(names, s.Aliases...)
	}
	_, err := hosts.Update(ctx, h.File, hosts.Edit{Project: h.Project, Remove: names}, hosts.Options{BackupDir: h.BackupDir})
	return h.wrap(err, "remove", validNames(names))
}

// validNames are the valid, normalised names among names, without
// duplicates, for the root command's argv.
func validNames(names []string) []string {
	out := []string{}
	seen := map[string]bool{}
	for _, n := range names {
		if h, err := hosts.Hostname(n); err == nil && !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}

// wrap turns the hosts package's permission error into the UI's, with the
// command to run as root (names: see SudoArgv).
func (h *HostsFile) wrap(err error, verb string, names []string) error {
	var pe *hosts.PermissionError
	if !errors.As(err, &pe) {
		return err
	}
	if names != nil {
		names = validNames(names)
	}
	var argv []string
	if h.SudoArgv != nil {
		argv = h.SudoArgv(verb, names)
	} else {
		args := []string{"hosts", verb}
		for _, n := range names {
			args = append(args, "--host", n)
		}
		argv = hosts.SudoArgv(args...)
	}
	return &PermissionError{Command: argv, Err: err}
}
