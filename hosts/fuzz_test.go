package hosts

import (
	"bytes"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/sites"
)

// FuzzRender checks, for any file and any name: parse→render keeps every
// byte outside the block, apply→remove gives back a file without a block
// byte for byte, and no name can produce a line outside its own two.
// Seeds: testdata/fuzz/FuzzRender.
func FuzzRender(f *testing.F) {
	for _, in := range inputs() {
		if len(in.data) < 4096 {
			f.Add(in.data, "example.gh")
		}
	}
	f.Add([]byte("a\n# siteplex begin acme 0a1b2c3d\n127.0.0.1 x.test\n# siteplex end acme 0a1b2c3d"), "y.test")
	f.Add([]byte("# siteplex begin acme 0a1b2c3d\r\n# siteplex end acme 0a1b2c3d\r\n# siteplex begin acme 0a1b2c3d\r\n::1 a.b\r\n# siteplex end acme 0a1b2c3d"), "a.b")
	f.Add([]byte("x\r"), "evil.test\n127.0.0.1 bank.com")
	f.Add([]byte("\xEF\xBB\xBF# siteplex begin acme 0a1b2c3d\n# siteplex end acme 0a1b2c3d"), "b\u00fccher.example")
	f.Add([]byte(""), "ab--cd.example")
	f.Add([]byte(""), "xn--bcher-kva.example")
	f.Add([]byte(""), "xn--zz.example")
	f.Add([]byte(""), "1.2.3.4")
	f.Add([]byte("a\n# siteplex begin acme 0a1b2c3d\r\n192.168.1.50 nas.internal # NAS\n127.0.0.1 a.test\n\n# siteplex end acme 0a1b2c3d"), "b.test")
	f.Add([]byte("# siteplex begin acme\n::1 x.test\n# siteplex end acme\n# siteplex begin old 0a1b2c3d\n10.1.1.1 y\n# siteplex end old 0a1b2c3d\n"), "x.test")
	f.Add([]byte("# siteplex begin other\n# siteplex begin acme 0a1b2c3d\n# siteplex end acme 0a1b2c3d\n"), "x.test")
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		doc, err := Parse(data, acme)
		if err != nil {
			var me *MalformedError
			if !errors.As(err, &me) {
				t.Fatalf("Parse error is not a *MalformedError: %v", err)
			}
			return
		}
		if bareMarker.Match(data) && hashedMarker.Match(data) {
			// A bare "acme" block next to the project's hashed one is
			// another project's (written by an older siteplex); once the
			// hashed block is gone it would be adopted, so the outside
			// bytes are not comparable across renders.
			return
		}
		outside := doc.Outside()
		if !doc.HasBlock() && !bytes.Equal(outside, data) {
			t.Fatalf("no block, but render changed the file:\n%q\n%q", data, outside)
		}
		// Re-rendering the block's own names keeps the outside bytes.
		same, err := doc.Render(doc.Names())
		if err != nil {
			t.Fatalf("Render(own names): %v", err)
		}
		mustOutside(t, same, outside, doc.Names())

		h, herr := sites.Hostname(name)
		if isLDH(name) && (herr != nil || h != name) {
			t.Fatalf("fast path accepts %q but sites.Hostname gives %q, %v", name, h, herr)
		}
		if fh, ferr := Hostname(name); fh != h || (ferr == nil) != (herr == nil) {
			t.Fatalf("Hostname(%q) = %q, %v; sites.Hostname = %q, %v", name, fh, ferr, h, herr)
		}
		if herr != nil {
			if _, err := doc.Render([]string{name}); err == nil {
				t.Fatalf("Render accepted the invalid name %q", name)
			}
			return
		}
		if strings.ContainsAny(h, " \t\r\n#\x00") {
			t.Fatalf("Hostname(%q) = %q, which is not a single field", name, h)
		}
		if _, err := doc.Render([]string{name}); h != name && err == nil {
			t.Fatalf("Render accepted the unnormalised name %q", name)
		}
		names := append(doc.Names(), h)
		out, err := doc.Render(names)
		if err != nil {
			t.Fatalf("Render: %v", err)
		}
		mustOutside(t, out, outside, names)
		if !doc.HasBlock() {
			d2, _ := Parse(out, acme)
			if back := d2.Outside(); !bytes.Equal(back, data) {
				t.Fatalf("apply→remove round trip:\n got %q\nwant %q", back, data)
			}
		}
	})
}

// bareMarker is a marker of the project without its hash (older siteplex).
var (
	bareMarker   = regexp.MustCompile(`(?m)^# siteplex (begin|end) acme[ \t\r]*$`)
	hashedMarker = regexp.MustCompile(`(?m)^# siteplex (begin|end) .* 0a1b2c3d[ \t\r]*$`)
)

// mustOutside checks out parses, holds exactly names in one block of
// canonical lines, and has outside as its bytes outside the block.
func mustOutside(t *testing.T, out, outside []byte, names []string) {
	t.Helper()
	d, err := Parse(out, acme)
	if err != nil {
		t.Fatalf("rendered file does not parse: %v\n%q", err, out)
	}
	want := slices.Compact(append([]string(nil), names...))
	got := d.Names()
	if !sameSet(got, want) {
		t.Fatalf("block names = %q, want %q", got, want)
	}
	if !bytes.Equal(d.Outside(), outside) {
		t.Fatalf("bytes outside the block changed:\n got %q\nwant %q", d.Outside(), outside)
	}
	if len(d.spans) > 1 {
		t.Fatalf("%d blocks after render", len(d.spans))
	}
	if len(names) == 0 {
		return
	}
	s := d.spans[0]
	block := string(out[s.start+len(s.lead) : s.end])
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(block, "\r\n", "\n"), "\n"), "\n")
	if len(lines) != 2*len(got)+2 {
		t.Fatalf("block has %d lines for %d names: %q", len(lines), len(got), block)
	}
	for i, n := range got {
		if lines[1+2*i] != IPv4+" "+n || lines[2+2*i] != IPv6+" "+n {
			t.Fatalf("block lines for %q are %q, %q", n, lines[1+2*i], lines[2+2*i])
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
