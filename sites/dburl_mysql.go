package sites

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// MySQL connection settings, as Django's MySQL backend and the client
// library (mysqlclient, libmysqlclient/libmariadb) read them. docs/sites.md
// ("MySQL and MariaDB") describes what is honoured and what is refused.

// parseMySQLURL parses the part after "mysql://" (or mysql2://,
// mysqlgis://, mysql-connector://): user, password, host (a %2F-encoded
// host is a unix socket), port, name, and ?options, which go through
// applyMySQLOptions as Django's OPTIONS would.
func parseMySQLURL(raw, rest, root string) (DB, error) {
	d, err := parseServerURL(raw, rest, MySQL)
	if err != nil {
		return DB{}, err
	}
	opts := make(map[string]string, len(d.Params))
	for k, v := range d.Params {
		opts[k] = v[len(v)-1] // dj-database-url keeps the last value
	}
	d.Params = nil
	shown := "database URL " + RedactURL(raw)
	if err := applyMySQLOptions(&d, opts, root, shown); err != nil {
		return DB{}, err
	}
	if d.Database == "" {
		return DB{}, Usagef("%s names no database: add /<name> after the host", shown)
	}
	return d, nil
}

// applyMySQLOptions applies connection options (Django's OPTIONS, or the
// query of a mysql:// URL) to d the way Django's backend hands them to the
// client: an option wins over NAME, USER, PASSWORD, HOST and PORT, and an
// option file (read_default_file) fills only what is still empty. A
// relative socket or option file path is relative to root, where Django
// runs. where names the setting in messages, which never hold a password.
func applyMySQLOptions(d *DB, opts map[string]string, root, where string) error {
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var optFile, optGroup string
	for _, k := range keys {
		v := opts[k]
		switch k {
		case "unix_socket", "socket":
			d.Host = absUnder(root, v)
		case "host":
			d.Host = v
		case "port":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 || n > 65535 {
				return Usagef("%s: option port %q is not a number from 1 to 65535", where, v)
			}
			d.Port = n
		case "user":
			d.User = v
		case "passwd", "password":
			d.Password = v
		case "db", "database":
			d.Database = v
		case "read_default_file", "option_files":
			optFile = absUnder(root, v)
		case "read_default_group", "option_groups":
			optGroup = v
		case "ssl_mode", "ssl-mode":
			m := strings.ToUpper(strings.ReplaceAll(v, "-", "_"))
			switch m {
			case "DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY":
				d.setParam("ssl_mode", m)
			default:
				return Usagef("%s: option ssl_mode %q is not one of DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY", where, v)
			}
		case "ssl_disabled":
			if v == "true" || v == "True" || v == "1" {
				d.setParam("ssl_mode", "DISABLED")
			}
		case "ssl-ca", "ssl_ca":
			d.setParam("ssl-ca", absUnder(root, v))
		case "ssl-cert", "ssl_cert":
			d.setParam("ssl-cert", absUnder(root, v))
		case "ssl-key", "ssl_key":
			d.setParam("ssl-key", absUnder(root, v))
		case "connect_timeout", "connection_timeout":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return Usagef("%s: option %s %q is not a number of seconds", where, k, v)
			}
			d.setParam("connect_timeout", v)
		case "named_pipe", "shared_memory_base_name", "ssl-capath", "ssl_capath", "ssl-cipher", "ssl_cipher", "ssl-crl", "ssl_crl", "ssl-crlpath", "ssl_crlpath":
			return Usagef("%s: option %s is not supported by siteplex: connect over TCP or a unix socket (docs/sites.md, MySQL and MariaDB)", where, k)
		default:
			// charset, init_command, isolation_level, autocommit, sql_mode,
			// use_unicode, compress, …: none of them changes which server
			// or which rows siteplex reads.
		}
	}
	if optGroup != "" && optFile == "" {
		return Usagef("%s: option read_default_group %q without read_default_file: siteplex reads only a named option file; add read_default_file", where, optGroup)
	}
	if optFile != "" {
		vals, err := readMySQLOptionFile(optFile, optGroup)
		if err != nil {
			return Usagef("%s: option read_default_file: %v", where, err)
		}
		fill := func(dst *string, keys ...string) {
			for _, k := range keys {
				if v, ok := vals[k]; ok && *dst == "" {
					*dst = v
				}
			}
		}
		fill(&d.User, "user")
		fill(&d.Password, "password")
		fill(&d.Database, "database")
		if d.Host == "" || d.Host == "localhost" {
			if s, ok := vals["socket"]; ok {
				d.Host = absUnder(root, s)
			}
		}
		fill(&d.Host, "host")
		if p, ok := vals["port"]; ok && d.Port == 0 {
			n, err := strconv.Atoi(p)
			if err != nil || n <= 0 || n > 65535 {
				return Usagef("%s: port %q in option file %s is not a number from 1 to 65535", where, p, optFile)
			}
			d.Port = n
		}
		if m, ok := vals["ssl_mode"]; ok && d.Params.Get("ssl_mode") == "" {
			d.setParam("ssl_mode", strings.ToUpper(m))
		}
	}
	return nil
}

func (d *DB) setParam(k, v string) {
	if d.Params == nil {
		d.Params = map[string][]string{}
	}
	d.Params.Set(k, v)
}

// absUnder makes a relative path absolute under root.
func absUnder(root, p string) string {
	if p == "" || filepath.IsAbs(p) || root == "" {
		return p
	}
	return filepath.Join(root, p)
}

// readMySQLOptionFile reads the connection keys (user, password, host,
// port, socket, database, ssl_mode) of the [client], [client-server] and
// [client-mariadb] groups and of group, later ones winning, the way the
// client library reads an option file. !include and !includedir are
// followed. Keys are lower-cased with '-' spelled '_'.
func readMySQLOptionFile(path, group string) (map[string]string, error) {
	groups := map[string]bool{"client": true, "client-server": true, "client-mariadb": true}
	if group != "" {
		groups[strings.ToLower(group)] = true
	}
	vals := map[string]string{}
	if err := readOptionFile(path, groups, vals, 0); err != nil {
		return nil, err
	}
	return vals, nil
}

func readOptionFile(path string, groups map[string]bool, vals map[string]string, depth int) error {
	if depth > 10 {
		return fmt.Errorf("%s: !include nested more than 10 deep", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot read option file: %w", err)
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case strings.HasPrefix(line, "!includedir"):
			dir := absUnder(filepath.Dir(path), strings.TrimSpace(strings.TrimPrefix(line, "!includedir")))
			names, _ := filepath.Glob(filepath.Join(dir, "*.cnf"))
			slices.Sort(names)
			for _, name := range names {
				if err := readOptionFile(name, groups, vals, depth+1); err != nil {
					return err
				}
			}
			continue
		case strings.HasPrefix(line, "!include"):
			name := absUnder(filepath.Dir(path), strings.TrimSpace(strings.TrimPrefix(line, "!include")))
			if err := readOptionFile(name, groups, vals, depth+1); err != nil {
				return err
			}
			continue
		case line[0] == '[':
			end := strings.IndexByte(line, ']')
			if end < 0 {
				return fmt.Errorf("%s line %d: missing ']' after the group name", path, n)
			}
			in = groups[strings.ToLower(strings.TrimSpace(line[1:end]))]
			continue
		}
		if !in {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		k = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(k)), "-", "_")
		switch k {
		case "user", "password", "host", "port", "socket", "database", "ssl_mode":
			vals[k] = optionValue(strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return nil
}

// optionValue decodes an option file value: quoted ('…' or "…") with
// backslash escapes, or bare up to a " #" comment.
func optionValue(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') {
		q := v[0]
		var b strings.Builder
		for i := 1; i < len(v); i++ {
			c := v[i]
			switch {
			case c == q:
				return b.String()
			case c == '\\' && i+1 < len(v):
				i++
				switch v[i] {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				case 'r':
					b.WriteByte('\r')
				case 'b':
					b.WriteByte('\b')
				case 's':
					b.WriteByte(' ')
				default:
					b.WriteByte(v[i])
				}
			default:
				b.WriteByte(c)
			}
		}
		return b.String()
	}
	if i := strings.Index(v, " #"); i >= 0 {
		v = v[:i]
	}
	if i := strings.Index(v, "\t#"); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v)
}
