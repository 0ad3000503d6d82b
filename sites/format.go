package sites

import (
	"strconv"
	"strings"
)

// DefaultDomainFormat is the local domain format used when neither a flag,
// the config nor the env file names one.
const DefaultDomainFormat = "{slug}.localhost"

// DomainFormat is a parsed local-domain format. It follows Python's
// str.format as django-multisite-plus uses it: "{}" and "{0}" are the slug,
// "{{" and "}}" are literal braces; siteplex adds "{slug}", "{id}" and
// "{schema}" (a tenant's schema_name).
type DomainFormat struct {
	raw   string
	parts []formatPart
}

type formatPart struct {
	lit   string
	field string // "", "slug", "id" or "schema"
}

// ParseDomainFormat parses f. Any field other than {}, {0}, {slug}, {id}
// and {schema}, or an unmatched brace, is a *UsageError naming the format.
func ParseDomainFormat(f string) (DomainFormat, error) {
	df := DomainFormat{raw: f}
	var lit strings.Builder
	auto, manual := false, false
	for i := 0; i < len(f); i++ {
		c := f[i]
		switch c {
		case '{':
			if i+1 < len(f) && f[i+1] == '{' {
				lit.WriteByte('{')
				i++
				continue
			}
			end := strings.IndexByte(f[i:], '}')
			if end < 0 {
				return DomainFormat{}, Usagef("domain format %q: unmatched '{'", f)
			}
			name := f[i+1 : i+end]
			var field string
			switch name {
			case "":
				auto, field = true, "slug"
			case "0":
				manual, field = true, "slug"
			case "slug", "id", "schema":
				field = name
			default:
				return DomainFormat{}, Usagef("domain format %q: unknown field {%s} (use {slug}, {id}, {schema}, {} or {0})", f, name)
			}
			if auto && manual {
				return DomainFormat{}, Usagef("domain format %q: cannot switch from automatic field numbering {} to manual {0}", f)
			}
			if lit.Len() > 0 {
				df.parts = append(df.parts, formatPart{lit: lit.String()})
				lit.Reset()
			}
			df.parts = append(df.parts, formatPart{field: field})
			i += end
		case '}':
			if i+1 < len(f) && f[i+1] == '}' {
				lit.WriteByte('}')
				i++
				continue
			}
			return DomainFormat{}, Usagef("domain format %q: single '}' encountered", f)
		default:
			lit.WriteByte(c)
		}
	}
	if lit.Len() > 0 {
		df.parts = append(df.parts, formatPart{lit: lit.String()})
	}
	return df, nil
}

// String returns the format as written.
func (df DomainFormat) String() string { return df.raw }

// Apply returns the format applied to a site's slug and id ({schema} is
// empty).
func (df DomainFormat) Apply(slug string, id int64) string { return df.Expand(slug, id, "") }

// UsesSchema reports whether the format has a {schema} field.
func (df DomainFormat) UsesSchema() bool {
	for _, p := range df.parts {
		if p.field == "schema" {
			return true
		}
	}
	return false
}

// Expand returns the format applied to a site's slug, id and schema (a
// tenant's schema_name, "" for other sites).
func (df DomainFormat) Expand(slug string, id int64, schema string) string {
	var b strings.Builder
	b.Grow(len(df.raw) + 2*len(slug) + 20)
	for _, p := range df.parts {
		switch p.field {
		case "":
			b.WriteString(p.lit)
		case "slug":
			b.WriteString(slug)
		case "id":
			b.WriteString(strconv.FormatInt(id, 10))
		case "schema":
			b.WriteString(schema)
		}
	}
	return b.String()
}
