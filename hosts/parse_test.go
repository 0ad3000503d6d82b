package hosts

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// inputs are hosts files with the shapes users have, each with what must
// survive an apply and a remove byte for byte.
func inputs() []struct {
	name string
	data []byte
} {
	long := "10.0.0.1 " + strings.Repeat("a", 70*1024) + " # a line longer than bufio.Scanner's 64 KiB\n"
	return []struct {
		name string
		data []byte
	}{
		{"empty", []byte("")},
		{"plain", []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n")},
		{"crlf", []byte("127.0.0.1 localhost\r\n# comment\r\n\r\n10.0.0.2  nas nas.lan\r\n")},
		{"no-final-newline", []byte("127.0.0.1 localhost\n10.0.0.2 nas")},
		{"crlf-no-final-newline", []byte("127.0.0.1 localhost\r\n10.0.0.2 nas")},
		{"tabs-comments", []byte("# The following lines are desirable for IPv6 capable hosts\n127.0.0.1\t\tlocalhost   \t# me\n\n\n   # indented comment\nfe80::1%lo0\tlocalhost\n")},
		{"bom", []byte("\xEF\xBB\xBF127.0.0.1 localhost\r\n::1 localhost\r\n")},
		{"bom-only", []byte("\xEF\xBB\xBF")},
		{"hostctl", []byte("127.0.0.1 localhost\n# Content under this line is handled by hostctl. DO NOT EDIT.\n##################################################################\n# profile.on dev\n127.0.0.1 api.dev.test\n# end\n# profile.off old\n# 127.0.0.1 old.test\n# end\n")},
		{"other-project", []byte("127.0.0.1 localhost\n# siteplex begin other\n127.0.0.1 other.test\n::1 other.test\n# siteplex end other\n")},
		{"user-duplicate", []byte("127.0.0.1 localhost\n192.168.1.9 example.gh www.example.gh # my staging box\n")},
		{"long-line", []byte("127.0.0.1 localhost\n" + long + "::1 localhost\n")},
		{"lone-cr", []byte("127.0.0.1 localhost\r")},
	}
}

var testNames = []string{"example.gh", "gh.localhost", "xn--bcher-kva.example"}

func TestRenderGolden(t *testing.T) {
	for _, in := range inputs() {
		t.Run(in.name, func(t *testing.T) {
			doc, err := Parse(in.data, acme)
			if err != nil {
				t.Fatal(err)
			}
			if doc.HasBlock() {
				t.Fatal("input has a block")
			}
			out, err := doc.Render(testNames)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden", in.name+".apply.golden")
			if in.name == "long-line" {
				// Too big for a golden file: check the shape instead.
				if !bytes.HasPrefix(out, in.data) || !bytes.HasSuffix(out, []byte("# siteplex end acme 0a1b2c3d\n")) {
					t.Fatalf("long-line: block not appended after the untouched input")
				}
			} else if *updateGolden {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			} else {
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test ./hosts -run TestRenderGolden -update)", err)
				}
				if !bytes.Equal(out, want) {
					t.Fatalf("apply:\n got %q\nwant %q", out, want)
				}
			}
			// The block parses back to the names, with the file's line endings.
			doc2, err := Parse(out, acme)
			if err != nil {
				t.Fatal(err)
			}
			if got := doc2.Names(); !slices.Equal(got, testNames) {
				t.Fatalf("names after apply = %q, want %q", got, testNames)
			}
			if bytes.Contains(in.data, []byte("\r\n")) && bytes.Count(out, []byte("\n")) != bytes.Count(out, []byte("\r\n"))+bytes.Count(in.data, []byte("\n"))-bytes.Count(in.data, []byte("\r\n")) {
				t.Fatalf("block does not use CRLF like the file: %q", out)
			}
			// Applying again changes nothing.
			again, _ := doc2.Render(testNames)
			if !bytes.Equal(again, out) {
				t.Fatalf("second apply changed the file:\n%q\n%q", out, again)
			}
			// Removing the block gives back the input byte for byte.
			back, err := doc2.Render(nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back, in.data) {
				t.Fatalf("apply→remove round trip:\n got %q\nwant %q", back, in.data)
			}
			// Removing names one by one also ends with the input.
			cur := out
			for i := range testNames {
				d, err := Parse(cur, acme)
				if err != nil {
					t.Fatal(err)
				}
				if cur, err = d.Render(testNames[i+1:]); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(cur, in.data) {
				t.Fatalf("removing every name one by one:\n got %q\nwant %q", cur, in.data)
			}
		})
	}
}

func TestParseBlocks(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		names     []string
		malformed bool
		line      int      // the line a *MalformedError names (0: any)
		render    []string // names to render; nil: skip
		want      string
	}{
		{name: "existing block", in: "a\n# siteplex begin acme 0a1b2c3d\n127.0.0.1 x.test\n::1 x.test\n# siteplex end acme 0a1b2c3d\nb\n",
			names: []string{"x.test"}, render: []string{"x.test", "y.test"},
			want: "a\n# siteplex begin acme 0a1b2c3d\n127.0.0.1 x.test\n::1 x.test\n127.0.0.1 y.test\n::1 y.test\n# siteplex end acme 0a1b2c3d\nb\n"},
		{name: "hand-edited lines are moved out of the block, unchanged", in: "# siteplex begin acme 0a1b2c3d\n127.0.0.1   X.test  y.test # mine\n127.0.0.1 z.test\n# note\n# siteplex end acme 0a1b2c3d  \n",
			names: []string{"z.test"}, render: []string{"z.test"},
			want: "127.0.0.1   X.test  y.test # mine\n# note\n# siteplex begin acme 0a1b2c3d\n127.0.0.1 z.test\n::1 z.test\n# siteplex end acme 0a1b2c3d\n"},
		// Issue 15: a NAS entry inside the block became 127.0.0.1, its comment lost.
		{name: "a LAN entry inside the block stays as it is", in: "127.0.0.1 localhost\n# siteplex begin acme 0a1b2c3d\n127.0.0.1 a.test\n192.168.1.50 nas.internal # NAS\n::1 a.test\n# siteplex end acme 0a1b2c3d\n",
			names: []string{"a.test"}, render: []string{"a.test", "b.test"},
			want: "127.0.0.1 localhost\n192.168.1.50 nas.internal # NAS\n# siteplex begin acme 0a1b2c3d\n127.0.0.1 a.test\n::1 a.test\n127.0.0.1 b.test\n::1 b.test\n# siteplex end acme 0a1b2c3d\n"},
		{name: "moved-out lines stay when the block goes", in: "a\n# siteplex begin acme 0a1b2c3d\n10.0.0.1 nas\n127.0.0.1 a.test\n# siteplex end acme 0a1b2c3d",
			names: []string{"a.test"}, render: []string{}, want: "a\n10.0.0.1 nas\n"},
		{name: "two blocks are merged into the first", in: "# siteplex begin acme 0a1b2c3d\n127.0.0.1 a.test\n# siteplex end acme 0a1b2c3d\nmid\n# siteplex begin acme 0a1b2c3d\n::1 b.test\n# siteplex end acme 0a1b2c3d\n",
			names: []string{"a.test", "b.test"}, render: []string{"a.test", "b.test"},
			want: "# siteplex begin acme 0a1b2c3d\n127.0.0.1 a.test\n::1 a.test\n127.0.0.1 b.test\n::1 b.test\n# siteplex end acme 0a1b2c3d\nmid\n"},
		{name: "other project's block is not ours", in: "# siteplex begin acme2\n127.0.0.1 a.test\n# siteplex end acme2\n",
			names: nil, render: []string{}, want: "# siteplex begin acme2\n127.0.0.1 a.test\n# siteplex end acme2\n"},
		{name: "emptied block disappears", in: "a\n# siteplex begin acme 0a1b2c3d\n127.0.0.1 a.test\n::1 a.test\n# siteplex end acme 0a1b2c3d\n",
			names: []string{"a.test"}, render: []string{}, want: "a\n"},
		{name: "block without final newline", in: "a\n# siteplex begin acme 0a1b2c3d\n127.0.0.1 a.test\n# siteplex end acme 0a1b2c3d",
			names: []string{"a.test"}, render: []string{}, want: "a"},
		{name: "invalid names in the block are not siteplex's: moved out", in: "# siteplex begin acme 0a1b2c3d\n127.0.0.1 bad_name\n127.0.0.1 ok.test\n# siteplex end acme 0a1b2c3d\n",
			names: []string{"ok.test"}, render: []string{"ok.test"}, want: "127.0.0.1 bad_name\n# siteplex begin acme 0a1b2c3d\n127.0.0.1 ok.test\n::1 ok.test\n# siteplex end acme 0a1b2c3d\n"},
		{name: "the old marker without a hash is adopted", in: "a\n# siteplex begin acme\n127.0.0.1 a.test\n::1 a.test\n# siteplex end acme\nb\n",
			names: []string{"a.test"}, render: []string{"a.test"},
			want: "a\n# siteplex begin acme 0a1b2c3d\n127.0.0.1 a.test\n::1 a.test\n# siteplex end acme 0a1b2c3d\nb\n"},
		{name: "a renamed project takes over the block of its root", in: "# siteplex begin old-name 0a1b2c3d\n127.0.0.1 a.test\n# siteplex end old-name 0a1b2c3d\n",
			names: []string{"a.test"}, render: []string{"a.test"},
			want: "# siteplex begin acme 0a1b2c3d\n127.0.0.1 a.test\n::1 a.test\n# siteplex end acme 0a1b2c3d\n"},
		{name: "a same-named project's block is not ours", in: "# siteplex begin acme ffffffff\n127.0.0.1 a.test\n# siteplex end acme ffffffff\n",
			names: nil, render: []string{"b.test"},
			want: "# siteplex begin acme ffffffff\n127.0.0.1 a.test\n# siteplex end acme ffffffff\n# siteplex begin acme 0a1b2c3d\n127.0.0.1 b.test\n::1 b.test\n# siteplex end acme 0a1b2c3d\n"},
		{name: "with a hashed block, a bare-name block is another project's", in: "# siteplex begin acme\n127.0.0.1 other.test\n# siteplex end acme\n# siteplex begin acme 0a1b2c3d\n127.0.0.1 a.test\n# siteplex end acme 0a1b2c3d\n",
			names: []string{"a.test"}, render: []string{},
			want: "# siteplex begin acme\n127.0.0.1 other.test\n# siteplex end acme\n"},
		{name: "begin without end", in: "# siteplex begin acme 0a1b2c3d\n127.0.0.1 a.test\n", malformed: true},
		{name: "end without begin", in: "x\n# siteplex end acme 0a1b2c3d\n", malformed: true},
		{name: "nested marker", in: "# siteplex begin acme 0a1b2c3d\n# siteplex begin other\n# siteplex end other\n# siteplex end acme 0a1b2c3d\n", malformed: true, line: 2},
		{name: "nested in another project's block", in: "x\n# siteplex begin other 12345678\n# siteplex begin acme 0a1b2c3d\n127.0.0.1 a.test\n# siteplex end acme 0a1b2c3d\n# siteplex end other 12345678\n", malformed: true, line: 3},
		{name: "overlapping another project's block", in: "# siteplex begin other\n# siteplex begin acme 0a1b2c3d\n# siteplex end other\n# siteplex end acme 0a1b2c3d\n", malformed: true, line: 3},
		{name: "after another project's unended block", in: "# siteplex begin other\n127.0.0.1 o.test\n# siteplex begin acme 0a1b2c3d\n127.0.0.1 a.test\n# siteplex end acme 0a1b2c3d\n",
			names: []string{"a.test"}, render: []string{}, want: "# siteplex begin other\n127.0.0.1 o.test\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := Parse([]byte(tt.in), acme)
			var me *MalformedError
			if tt.malformed {
				if !errors.As(err, &me) {
					t.Fatalf("Parse error = %v, want *MalformedError", err)
				}
				if !strings.Contains(err.Error(), "line ") || tt.line != 0 && me.Line != tt.line {
					t.Fatalf("error does not say line %d: %v", tt.line, err)
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := doc.Names(); !slices.Equal(got, tt.names) {
				t.Fatalf("Names = %q, want %q", got, tt.names)
			}
			if tt.render == nil {
				return
			}
			out, err := doc.Render(tt.render)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want {
				t.Fatalf("Render:\n got %q\nwant %q", out, tt.want)
			}
		})
	}
}

func TestRenderRefusesInvalidNames(t *testing.T) {
	doc, err := Parse([]byte("127.0.0.1 localhost\n"), acme)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range invalidNames() {
		_, err := doc.Render([]string{"ok.test", n.in})
		var ie *InvalidNameError
		if !errors.As(err, &ie) || len(ie.Names) != 1 || ie.Names[0].Name != n.in {
			t.Errorf("Render(%q) error = %v, want an *InvalidNameError naming it", n.in, err)
		}
	}
}

// invalidNames are names that must never reach the file (issue 3).
func invalidNames() []struct{ why, in string } {
	label63 := strings.Repeat("a", 63)
	long254 := strings.Repeat(label63+".", 3) + strings.Repeat("b", 59) + ".cd"
	return []struct{ why, in string }{
		{"newline", "evil.test\n127.0.0.1 bank.com"},
		{"carriage return", "evil.test\r::1 bank.com"},
		{"hash", "evil.test#comment"},
		{"space", "evil test"},
		{"tab", "evil\ttest"},
		{"control character", "evil\x00.test"},
		{"DEL", "evil\x7f.test"},
		{"leading hyphen", "-evil.test"},
		{"trailing hyphen", "evil-.test"},
		{"64-character label", strings.Repeat("a", 64) + ".test"},
		{"254 characters", long254},
		{"empty", ""},
		{"underscore", "under_score.test"},
		{"empty label", "a..test"},
	}
}

// acme is the key most tests use: the markers read "acme 0a1b2c3d".
var acme = Key{Name: "acme", Hash: "0a1b2c3d"}

func TestKeyFor(t *testing.T) {
	a, b := KeyFor("acme", "/srv/one/acme"), KeyFor("acme", "/srv/two/acme")
	if a.Name != "acme" || !isHash(a.Hash) || a == b {
		t.Fatalf("KeyFor: %+v %+v: two roots must give two keys", a, b)
	}
	if BeginMarker(a) != "# siteplex begin acme "+a.Hash {
		t.Fatalf("marker %q", BeginMarker(a))
	}
	dir := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	os.Symlink(dir, link)
	if KeyFor("x", dir) != KeyFor("x", link) {
		t.Fatal("a symlinked root gives another key")
	}
	for _, k := range []Key{{"", "0a1b2c3d"}, {"acme", ""}, {"acme", "0A1B2C3D"}, {"acme", "0a1b2c3"}, {" acme", "0a1b2c3d"}} {
		if _, err := Parse(nil, k); err == nil {
			t.Errorf("Parse accepted the key %+v", k)
		}
	}
}
