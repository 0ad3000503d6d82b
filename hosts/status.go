package hosts

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/siteplex/siteplex/internal/safefile"
)

// SystemFile is the hosts file the system resolver reads.
const SystemFile = "/etc/hosts"

// Report is the state of a project's block and of some names in it. Its
// JSON form is part of `siteplex hosts status --json`.
type Report struct {
	// Path is the hosts file (symlinks resolved).
	Path string `json:"hosts_file"`
	// Key names the block.
	Key Key `json:"-"`
	// System is true when Path is the file the system resolver reads
	// (/etc/hosts); only then are names resolved.
	System bool `json:"system"`
	// Block is true when the file holds the project's block; Line is the
	// 1-based line of its begin marker (0 without a block).
	Block bool `json:"block"`
	Line  int  `json:"line"`
	// Legacy is true when the block has an older marker (without the
	// project's hash, or under an older name); the next write renews it.
	Legacy bool `json:"legacy_marker"`
	// BlockNames are all names in the block, in file order.
	BlockNames []string `json:"block_names"`
	// Names are the names asked about, in the order asked.
	Names []NameStatus `json:"names"`
	// Extra are the names in the block that were not asked about.
	Extra []string `json:"extra"`
	// Foreign are lines inside the block that siteplex did not write (hand
	// edits); the next write moves them out of the block, unchanged.
	Foreign []ForeignLine `json:"foreign_lines"`
	// Interrupted is true when an in-place write of the file was cut short
	// (siteplex killed); the next apply or remove finishes or undoes it.
	Interrupted bool `json:"interrupted_write"`
}

// NameStatus is one name's state.
type NameStatus struct {
	Name string `json:"name"`
	// Error is set when the name is not a valid hostname (then nothing else
	// is).
	Error string `json:"error,omitempty"`
	// InBlock is true when the project's block lists the name.
	InBlock bool `json:"in_block"`
	// Elsewhere are the 1-based lines siteplex did not write that list the
	// name (the user's own entries, left alone).
	Elsewhere []int `json:"elsewhere"`
	// Resolved is how the system resolver answers for the name; nil when
	// the file is not the system's.
	Resolved *Resolution `json:"resolved,omitempty"`
}

// Resolution is a system resolver answer.
type Resolution struct {
	Addrs []string `json:"addrs"`
	// Loopback is true when the name resolves and every address is a
	// loopback address.
	Loopback bool `json:"loopback"`
	// Error is the lookup error, if any.
	Error string `json:"error,omitempty"`
}

// IsSystem reports whether path is the file the system resolver reads.
func IsSystem(path string) bool {
	a, err1 := os.Stat(path)
	b, err2 := os.Stat(SystemFile)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

// Status reads the hosts file at path without locking or writing and
// reports k's block and each of names (normalised with sites.Hostname).
// When the file is the system's, each valid name is resolved through the
// system resolver (net.DefaultResolver, 3s per name, until ctx is done).
func Status(ctx context.Context, path string, k Key, names []string) (*Report, error) {
	file, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, readErr(path, err)
	}
	if abs, err := filepath.Abs(file); err == nil {
		file = abs
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, readErr(file, err)
	}
	interrupted := false
	if base, err := safefile.StateDir(); err == nil {
		interrupted = safefile.Pending(BackupFolder(base, file))
	}
	doc, err := Parse(data, k)
	if err != nil {
		if interrupted {
			return nil, fmt.Errorf("hosts: %s: %w\n(a siteplex write of this file was interrupted: the next `siteplex hosts apply` or `siteplex hosts remove` finishes or undoes it first)", file, err)
		}
		return nil, fmt.Errorf("hosts: %s: %w", file, err)
	}
	r := &Report{Path: file, Key: k, System: IsSystem(file), Block: doc.HasBlock(), Legacy: doc.Legacy(),
		Line: doc.BlockLine(), BlockNames: doc.Names(), Names: []NameStatus{}, Extra: []string{},
		Foreign: doc.Foreign(), Interrupted: interrupted}
	if r.Foreign == nil {
		r.Foreign = []ForeignLine{}
	}
	in := make(map[string]bool, len(r.BlockNames))
	for _, n := range r.BlockNames {
		in[n] = true
	}
	asked := map[string]bool{}
	lookup := doc.lookup()
	for _, n := range names {
		h, err := Hostname(n)
		if err != nil {
			r.Names = append(r.Names, NameStatus{Name: n, Error: err.Error(), Elsewhere: []int{}})
			continue
		}
		asked[h] = true
		ls := lookup[h]
		if ls == nil {
			ls = []int{}
		}
		r.Names = append(r.Names, NameStatus{Name: h, InBlock: in[h], Elsewhere: ls})
	}
	for _, n := range r.BlockNames {
		if !asked[n] {
			r.Extra = append(r.Extra, n)
		}
	}
	if r.System {
		resolveAll(ctx, net.DefaultResolver, r.Names)
	}
	return r, nil
}

// resolveAll fills Resolved for the valid names, 16 lookups at a time.
func resolveAll(ctx context.Context, res *net.Resolver, list []NameStatus) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range list {
		if list[i].Error != "" {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(ns *NameStatus) {
			defer wg.Done()
			defer func() { <-sem }()
			ns.Resolved = Resolve(ctx, res, ns.Name)
		}(&list[i])
	}
	wg.Wait()
}

// Resolve asks res (nil = net.DefaultResolver) for name's addresses, within
// 3 seconds.
func Resolve(ctx context.Context, res *net.Resolver, name string) *Resolution {
	if res == nil {
		res = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	addrs, err := res.LookupHost(ctx, name)
	r := &Resolution{Addrs: addrs, Loopback: len(addrs) > 0}
	if r.Addrs == nil {
		r.Addrs = []string{}
	}
	if err != nil {
		r.Error = err.Error()
		r.Loopback = false
	}
	for _, a := range addrs {
		ip, err := netip.ParseAddr(a)
		if err != nil || !ip.Unmap().IsLoopback() {
			r.Loopback = false
		}
	}
	return r
}
