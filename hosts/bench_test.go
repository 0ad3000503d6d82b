package hosts

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// benchNames are 10,000 site names: 20,000 lines in the block.
func benchNames() []string {
	names := make([]string, 10000)
	for i := range names {
		names[i] = fmt.Sprintf("site%05d.example.test", i)
	}
	return names
}

// BenchmarkApply10k: apply 10,000 names (20,000 lines) into a 1 MB file,
// through the whole safe writer (lock, re-read, backup, temp file, fsync,
// rename). Issue 3's target: under 100 ms.
func BenchmarkApply10k(b *testing.B) {
	dir := b.TempDir()
	b.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
	p := filepath.Join(dir, "hosts")
	orig := []byte(megabyte())
	names := benchNames()
	ctx := context.Background()
	b.SetBytes(int64(len(orig)))
	for b.Loop() {
		b.StopTimer()
		if err := os.WriteFile(p, orig, 0o644); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := Apply(ctx, p, "acme", names)
		if err != nil || !res.Changed {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyNoop10k: the same apply when the block is already there:
// nothing is written. Target: under 20 ms.
func BenchmarkApplyNoop10k(b *testing.B) {
	dir := b.TempDir()
	b.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
	p := filepath.Join(dir, "hosts")
	if err := os.WriteFile(p, []byte(megabyte()), 0o644); err != nil {
		b.Fatal(err)
	}
	names := benchNames()
	ctx := context.Background()
	if _, err := Apply(ctx, p, "acme", names); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		res, err := Apply(ctx, p, "acme", names)
		if err != nil || res.Changed {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseRender10k is the pure part alone: parse a 1 MB file and
// render 10,000 names into it.
func BenchmarkParseRender10k(b *testing.B) {
	data := []byte(megabyte())
	names := benchNames()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		d, err := Parse(data, "acme")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := d.Render(names); err != nil {
			b.Fatal(err)
		}
	}
}
