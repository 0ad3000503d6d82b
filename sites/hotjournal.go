package sites

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/url"
	"os"
)

// journalMagic starts the header of a SQLite rollback journal that holds
// a transaction (sqlite.org/fileformat2.html#the_rollback_journal).
var journalMagic = []byte{0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7}

// HotJournal reports whether the SQLite database d has an unfinished
// transaction: a rollback journal (<file>-journal) that is not empty and
// starts with a journal header, left by a process that was killed or
// crashed in the middle of a write. SQLite rolls such a transaction back
// the next time the database is opened read-write; a read-only open
// cannot, and fails with "attempt to write a readonly database". It
// returns the journal's path.
func HotJournal(d DB) (string, bool) {
	if d.Driver != SQLite || d.Path == ":memory:" {
		return "", false
	}
	j := d.Path + "-journal"
	f, err := os.Open(j)
	if err != nil {
		return j, false
	}
	defer f.Close()
	head := make([]byte, len(journalMagic))
	if _, err := io.ReadFull(f, head); err != nil {
		return j, false
	}
	return j, bytes.Equal(head, journalMagic)
}

// HotJournalError means a read-only open met an unfinished SQLite
// transaction (see HotJournal), or a writing command found one and was
// not told to roll it back. Nothing was changed.
type HotJournalError struct {
	Path, Journal string
	// Command rolls it back (set by the caller; "" = the default).
	Command string
	Err     error
}

func (e *HotJournalError) Error() string {
	cmd := e.Command
	if cmd == "" {
		cmd = "siteplex domains status --rollback-journal"
	}
	return fmt.Sprintf("SQLite database %s has an unfinished transaction: %s is the journal of a process that was stopped in the middle of a write. "+
		"Do not delete %s: it holds what undoes that transaction, and without it the database is corrupt. "+
		"siteplex did not change anything; roll the transaction back the way SQLite does (it opens the database read-write once) with:\n  %s\n"+
		"(starting Django once does the same)", e.Path, e.Journal, e.Journal, cmd)
}

func (e *HotJournalError) Unwrap() error { return e.Err }

// RollbackHotJournal rolls back an unfinished transaction of the SQLite
// database d the way SQLite does: it opens the database read-write once
// and reads from it, which makes SQLite play the journal back. It reports
// whether there was one. It needs write access to the file and its
// folder; other databases have nothing to do.
func RollbackHotJournal(ctx context.Context, d DB) (bool, error) {
	j, hot := HotJournal(d)
	if !hot {
		return false, nil
	}
	dsn := "file:" + (&url.URL{Path: d.Path}).EscapedPath() + "?mode=rw&_pragma=busy_timeout(5000)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return false, fmt.Errorf("opening SQLite database %s to roll back %s: %w", d.Path, j, err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master`).Scan(&n); err != nil {
		return false, fmt.Errorf("rolling back the unfinished transaction of SQLite database %s: %w (the journal %s is kept; run siteplex as the owner of the database and its folder)", d.Path, err, j)
	}
	if _, still := HotJournal(d); still {
		return false, fmt.Errorf("SQLite database %s: %s is still there after rolling back; a process may be writing it right now, try again when it is done", d.Path, j)
	}
	return true, nil
}
