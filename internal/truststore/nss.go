package truststore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/siteplex/siteplex/internal/tlsca"
)

// NSSDB is one NSS certificate database a browser reads.
type NSSDB struct {
	// Dir is the folder with cert9.db.
	Dir string
	// Browser says whose it is: "Chromium/Chrome", "Firefox profile X".
	Browser string
	// Exists is false for the Chromium database before anything created
	// it; Certutil.Install creates it, as Chromium would.
	Exists bool
	// create is true for the database Install may create.
	create bool
}

// CertutilHelp is how to install certutil.
const CertutilHelp = "install certutil: apt install libnss3-tools (Fedora: dnf install nss-tools; Arch: pacman -S nss)"

// Certutil runs NSS's certutil, as the user the databases belong to.
type Certutil struct {
	Path string
	// As is who certutil runs as, and who folders it creates belong to
	// (nil: this process). Set it when root works for a sudo caller, so
	// the caller's databases never become root's.
	As *tlsca.Owner
}

// NewCertutil finds certutil on PATH; the error says how to install it.
func NewCertutil(as *tlsca.Owner) (*Certutil, error) {
	p, err := exec.LookPath("certutil")
	if err != nil {
		return nil, fmt.Errorf("certutil not found: %s", CertutilHelp)
	}
	return &Certutil{Path: p, As: as}, nil
}

func (c *Certutil) run(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, c.Path, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if c.As != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(c.As.UID), Gid: uint32(c.As.GID)}}
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("certutil %s: %v: %s", args[0], err, firstLine(stderr.Bytes()))
	}
	return out, nil
}

func nssResult(db NSSDB, status, detail string) Result {
	return Result{Store: NSS, Location: db.Dir, Status: status, Detail: db.Browser + optional(detail)}
}

func optional(s string) string {
	if s == "" {
		return ""
	}
	return "; " + s
}

// Status says whether db trusts t: t's certificate under its name with
// the "trusted CA for websites" flag (Trusted); another certificate or no
// trust flag under its name (Stale); or nothing (Absent).
func (c *Certutil) Status(ctx context.Context, db NSSDB, t Target) Result {
	if !db.Exists {
		return nssResult(db, Absent, "no database yet")
	}
	sql := "sql:" + db.Dir
	pemOut, err := c.run(ctx, nil, "-L", "-d", sql, "-n", t.Name, "-a")
	if err != nil {
		if notFound(err) {
			return nssResult(db, Absent, "")
		}
		return nssResult(db, Failed, err.Error())
	}
	list, err := c.run(ctx, nil, "-L", "-d", sql)
	if err != nil {
		return nssResult(db, Failed, err.Error())
	}
	if flags := trustFlags(list, t.Name); !strings.Contains(strings.Split(flags, ",")[0], "C") {
		return nssResult(db, Stale, fmt.Sprintf("listed with trust %q, not as a CA for websites: run `siteplex trust --store nss` again", flags))
	}
	if t.CertPEM != nil && !containsCert(pemOut, der(t.CertPEM)) {
		return nssResult(db, Stale, "holds an older siteplex CA from the same CAROOT: run `siteplex trust --store nss` again")
	}
	return nssResult(db, Trusted, "")
}

// notFound reports whether a certutil error says the nickname is not in
// the database.
func notFound(err error) bool {
	m := strings.ToLower(err.Error())
	return strings.Contains(m, "could not find") || strings.Contains(m, "pr_file_not_found_error")
}

// trustFlags finds name's trust attributes ("C,,") in `certutil -L`
// output.
func trustFlags(list []byte, name string) string {
	for l := range strings.SplitSeq(string(list), "\n") {
		rest, ok := strings.CutPrefix(l, name)
		if !ok || !strings.HasPrefix(rest, "  ") {
			continue
		}
		if f := strings.Fields(rest); len(f) == 1 {
			return f[0]
		}
	}
	return ""
}

// Install adds t to db as a trusted CA for websites (trust "C,,"),
// replacing any older certificate under its name; a database already
// trusting it is left alone. The Chromium database is created first when
// it does not exist yet (folders 0700, `certutil -N --empty-password`).
func (c *Certutil) Install(ctx context.Context, db NSSDB, t Target) Result {
	created := ""
	if !db.Exists {
		if !db.create {
			return nssResult(db, Failed, "no database")
		}
		if err := c.As.MkdirAll(db.Dir); err != nil {
			return nssResult(db, Failed, err.Error())
		}
		if _, err := c.run(ctx, nil, "-N", "-d", "sql:"+db.Dir, "--empty-password"); err != nil {
			return nssResult(db, Failed, err.Error())
		}
		db.Exists = true
		created = "created the database"
	} else if st := c.Status(ctx, db, t); st.Status == Trusted {
		return nssResult(db, Already, "")
	}
	if _, err := c.remove(ctx, db, t.Name); err != nil {
		return nssResult(db, Failed, err.Error())
	}
	if _, err := c.run(ctx, t.CertPEM, "-A", "-d", "sql:"+db.Dir, "-t", "C,,", "-n", t.Name, "-a"); err != nil {
		return nssResult(db, Failed, err.Error())
	}
	if st := c.Status(ctx, db, t); st.Status != Trusted {
		return nssResult(db, Failed, "certutil added it, but the database does not list it as trusted: "+st.Detail)
	}
	return nssResult(db, Installed, created)
}

// Uninstall removes every certificate under t's name from db.
func (c *Certutil) Uninstall(ctx context.Context, db NSSDB, t Target) Result {
	if !db.Exists {
		return nssResult(db, Absent, "no database")
	}
	n, err := c.remove(ctx, db, t.Name)
	if err != nil {
		return nssResult(db, Failed, err.Error())
	}
	if n == 0 {
		return nssResult(db, Absent, "")
	}
	return nssResult(db, Removed, "")
}

// remove deletes certificates named name until none is left, and says
// how many went.
func (c *Certutil) remove(ctx context.Context, db NSSDB, name string) (int, error) {
	for n := 0; n < 100; n++ {
		if _, err := c.run(ctx, nil, "-D", "-d", "sql:"+db.Dir, "-n", name); err != nil {
			if notFound(err) {
				return n, nil
			}
			return n, err
		}
	}
	return 100, errors.New("certutil -D: still finding " + name + " after 100 deletions")
}

// NSSDatabases lists the NSS databases under home that siteplex manages:
// Chromium's ~/.pki/nssdb (listed even when absent: Install creates it,
// as Chromium would on its first run) and every existing cert9.db of
// Chromium's snap and of Firefox profiles (plain, snap, Flatpak). It
// returns nil outside Linux.
func NSSDatabases(home string) []NSSDB {
	if !nssSupported {
		return nil
	}
	has := func(dir string) bool {
		_, err := os.Stat(filepath.Join(dir, "cert9.db"))
		return err == nil
	}
	chromium := filepath.Join(home, ".pki", "nssdb")
	out := []NSSDB{{Dir: chromium, Browser: "Chromium/Chrome", Exists: has(chromium), create: true}}
	if snap := filepath.Join(home, "snap", "chromium", "current", ".pki", "nssdb"); has(snap) {
		out = append(out, NSSDB{Dir: snap, Browser: "Chromium (snap)", Exists: true})
	}
	for _, pattern := range []string{
		filepath.Join(home, ".mozilla", "firefox", "*"),
		filepath.Join(home, "snap", "firefox", "common", ".mozilla", "firefox", "*"),
		filepath.Join(home, ".var", "app", "org.mozilla.firefox", ".mozilla", "firefox", "*"),
	} {
		profiles, _ := filepath.Glob(pattern)
		for _, p := range profiles {
			if has(p) {
				out = append(out, NSSDB{Dir: p, Browser: "Firefox profile " + filepath.Base(p), Exists: true})
			}
		}
	}
	return out
}
