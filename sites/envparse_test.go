package sites

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/siteplex/siteplex/internal/testenv"
)

// envCases are env files with the shapes python-dotenv must agree on:
// multi-line quoted values (single, double, escapes), comments, export,
// odd spacing, broken lines, CRLF and lone CR.
var envCases = []string{
	"",
	"A=1\nB=2\n",
	"# comment\n\nexport A=1\nexport\tSITE_ID=3\n",
	"A=1 # comment\nB='x # not a comment'\nC=\"y # neither\" # but this is\n",
	"CERT=\"-----BEGIN CERTIFICATE-----\nMIIB\nSITE_ID=9\n-----END CERTIFICATE-----\"\nSITE_ID=2\n",
	"KEY='line one\nSITE_ID=9\nline three'\nSITE_ID=4\n",
	"A=\"esc \\\" quote\nSITE_ID=9\n\"\nB=\"\\n\\t\\\\ \\x41 \\u00e9\"\n",
	"A='it\\'s'\nB='a\\'\nC='tail \\\\'\n",
	"A=\"unterminated\nSITE_ID=5\nB=1\n",
	"A='unterminated\nSITE_ID=5\n",
	"A=\"x\" trailing\nSITE_ID=6\n",
	"  SITE_ID = 7  \n\tB=\t2\t\n",
	"'SITE_ID'=8\n'B C'=9\n",
	"NOVALUE\nEMPTY=\nSP= \n",
	"A=1\r\nB=\"x\r\ny\"\r\nC=3",
	"A=1\rB=2\rC='x\ry'\r",
	"=nokey\nA B=1\n#only\nexport\nexportX=1\n",
	"A=#not a comment\nB= #still a value\nC=x #comment\n",
	"\u00a0SITE_ID=10\nA=x\u2028y\nB=1\x1cC=2\n",
	"A=caf\u00e9 \u3000# comment\n",
	"A=\"a\"\"b\"\nB='a''b'\n",
	"A=\"\"\nB=''\nC=\"#\"\n",
	"export  export=1\nexport SITE_ID\n",
	"   \n\n\t\n",
	"A=1\\\nB=2\n",
}

// TestEnvParserMatchesPythonDotenv parses every case with python-dotenv
// (Debian's python3-dotenv) and with parseEnv: the same keys, the same
// values.
func TestEnvParserMatchesPythonDotenv(t *testing.T) {
	testenv.NeedPython(t, "dotenv")
	dir := t.TempDir()
	var paths []string
	for i, c := range envCases {
		p := filepath.Join(dir, fmt.Sprintf("case%02d.env", i))
		if err := os.WriteFile(p, []byte("\ufeff"+c), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	// A BOM in front: python-dotenv reads it with utf-8-sig, siteplex
	// skips it.
	script := `import json, sys
from dotenv import dotenv_values
print(json.dumps([dotenv_values(p, interpolate=False, encoding="utf-8-sig") for p in sys.argv[1:]]))`
	out, err := exec.Command(testenv.Python, append([]string{"-c", script}, paths...)...).Output()
	if err != nil {
		t.Fatalf("python-dotenv: %v", err)
	}
	var want []map[string]*string
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	for i, c := range envCases {
		got := map[string]*string{}
		for _, b := range parseEnv([]byte(c)) {
			switch {
			case b.err || !b.hasKey:
			case b.hasValue:
				v := b.value
				got[b.key] = &v
			default:
				got[b.key] = nil
			}
		}
		if !sameEnv(got, want[i]) {
			t.Errorf("case %d %q:\n siteplex %s\n python   %s", i, c, showEnv(got), showEnv(want[i]))
		}
		ef, err := ReadEnvFile(paths[i])
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range want[i] {
			if v != nil && ef.Values[k] != *v {
				t.Errorf("case %d: ReadEnvFile %s = %q, python %q", i, k, ef.Values[k], *v)
			}
		}
	}
}

func sameEnv(a, b map[string]*string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || (v == nil) != (w == nil) || v != nil && *v != *w {
			return false
		}
	}
	return true
}

func showEnv(m map[string]*string) string {
	var parts []string
	for k, v := range m {
		if v == nil {
			parts = append(parts, k+"=None")
		} else {
			parts = append(parts, fmt.Sprintf("%s=%q", k, *v))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// TestPySpaceMatchesPython: \s in python-dotenv's regular expressions is
// str.isspace; siteplex's whitespace must be the same set of characters.
func TestPySpaceMatchesPython(t *testing.T) {
	testenv.NeedPython(t)
	out, err := exec.Command(testenv.Python, "-c", `print(" ".join(str(c) for c in range(0x110000) if chr(c).isspace()))`).Output()
	if err != nil {
		t.Fatal(err)
	}
	var want []rune
	for _, f := range strings.Fields(string(out)) {
		var r rune
		fmt.Sscan(f, &r)
		want = append(want, r)
	}
	var got []rune
	for r := rune(0); r < 0x110000; r++ {
		if pySpace(r) {
			got = append(got, r)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pySpace = %U\npython   %U", got, want)
	}
	// spaceAt agrees with pySpace on the encoded runes.
	for _, r := range append(want, 'a', '#', 0xfeff) {
		b := []byte(string(r))
		if n := spaceAt(b, 0, false); (n > 0) != pySpace(r) || n > 0 && n != utf8.RuneLen(r) {
			t.Errorf("spaceAt(%U) = %d", r, n)
		}
	}
}

// FuzzSetEnvKey: whatever the file, setting or clearing SITE_ID changes
// only the SITE_ID bindings: every other byte stays (the file without
// its SITE_ID lines is the same before and after), every other key reads
// the same, and SITE_ID reads back as what was set. Seeds:
// testdata/fuzz/FuzzSetEnvKey.
func FuzzSetEnvKey(f *testing.F) {
	for _, c := range envCases {
		f.Add([]byte(c), "3", true)
		f.Add([]byte(c), "", false)
	}
	f.Add([]byte("\xef\xbb\xbfSITE_ID=1"), "", false)
	f.Add([]byte("A=\"x\n"), "a b", true)
	f.Fuzz(func(t *testing.T, data []byte, v string, set bool) {
		var value *string
		if set {
			value = &v
		}
		ed, err := SetEnvKey(data, "SITE_ID", value)
		if err != nil {
			if _, ok := err.(*UnsafeEnvEditError); !ok {
				t.Fatalf("error %T: %v", err, err)
			}
			return
		}
		bom := 0
		if bytes.HasPrefix(data, utf8BOM) {
			bom = 3
			if !bytes.HasPrefix(ed.Content, utf8BOM) {
				t.Fatal("the BOM was dropped")
			}
		}
		if got, want := stripEnvKey(ed.Content[bom:], "SITE_ID"), stripEnvKey(data[bom:], "SITE_ID"); !bytes.Equal(got, want) {
			t.Fatalf("bytes outside the SITE_ID lines changed:\n in %q\nout %q\n got %q\nwant %q", data, ed.Content, got, want)
		}
		if !set && !bytes.Equal(ed.Content[bom:], stripEnvKey(data[bom:], "SITE_ID")) {
			t.Fatalf("clear left more than the file without its SITE_ID lines: %q", ed.Content)
		}
		if err := checkEnvEdit(data[bom:], ed.Content[bom:], "SITE_ID", value); err != nil {
			t.Fatalf("the edit reads differently: %v\n in %q\nout %q", err, data, ed.Content)
		}
		again, err := SetEnvKey(ed.Content, "SITE_ID", value)
		if err != nil || again.Changed {
			t.Fatalf("the same edit again changed the file: %v %q → %q", err, ed.Content, again.Content)
		}
	})
}

// stripEnvKey is d without the lines of key's bindings (as removing
// them takes them out).
func stripEnvKey(d []byte, key string) []byte {
	var out []byte
	prev := 0
	for _, b := range parseEnv(d) {
		if b.err || !b.hasKey || b.key != key {
			continue
		}
		from, to := lineSpan(d, b)
		out = append(out, d[prev:from]...)
		prev = to
	}
	return append(out, d[prev:]...)
}
