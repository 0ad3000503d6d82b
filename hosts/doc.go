// Package hosts keeps one managed block per project in a hosts file
// (/etc/hosts by default), and nothing else:
//
//	# siteplex begin <project> <hash>
//	127.0.0.1 example.gh
//	::1 example.gh
//	# siteplex end <project> <hash>
//
// A block is named by a Key: the project's name for people and a short
// hash of its root folder (KeyFor), so that two projects with the same
// name never share a block. Blocks an older siteplex wrote without the
// hash, and blocks of the same root under an older name, are adopted.
//
// Every byte outside the block is kept as it was: other tools' blocks,
// comments, tabs, CRLF line endings, a UTF-8 BOM, a missing final newline,
// very long lines and the user's own entries for the same names. Lines
// inside the block that siteplex did not write are moved out of it,
// unchanged; a block nested in or overlapping another siteplex block is
// refused.
//
// The package has two layers.
//
// The pure layer works on []byte and does no I/O: Parse finds the project's
// block (a *MalformedError for a broken or nested one), Doc.Names lists its
// names, Doc.Foreign the lines in it siteplex did not write, Doc.Render
// returns the file with the block holding exactly the given names (an
// empty list removes the block), Doc.Lines finds the user's own entries
// for a name.
//
// The I/O layer edits a file through the shared safe writer,
// internal/safefile (see docs/hosts.md, "Safe writing"). Update (and its
// shorthands Apply, Remove, RemoveBlock) locks the file, re-reads it under
// the lock, writes nothing when nothing changes, saves a pristine copy and
// a rotating backup (5) in the private folder BackupFolder(StateDir()),
// then replaces the file by a rename after checking it is still what was
// read, or rewrites it in place (space reserved, the old content kept in
// an intent file until the new bytes are synced) where a rename cannot be
// used. Restore puts a backup back. Status reads the file and reports a
// project's block and, for the system file, how the system resolver
// answers for each name.
//
// Errors are typed so callers choose the exit status and message:
// *InvalidNameError (names refused; the valid ones were still applied),
// *PermissionError (this user may not write the file; the caller puts the
// sudo command line in Command), *MalformedError (a broken block).
//
// The API the terminal UI uses:
//
//	k := hosts.KeyFor(p.Name, p.Root)
//	rep, err := hosts.Status(ctx, p.HostsFile, k, names) // which names are in the block
//	res, err := hosts.Apply(ctx, p.HostsFile, k, names)  // res.Changed: whether it wrote
//	res, err := hosts.Remove(ctx, p.HostsFile, k, names)
//	if hosts.NeedsRoot(p.HostsFile) { // or errors.As(err, new(*hosts.PermissionError))
//		argv := hosts.SudoArgv("--project", p.Root, "hosts", "apply", "--host", name)
//		// tea.ExecProcess(exec.Command(argv[0], argv[1:]...), ...)
//	}
//
// Names are validated with sites.Hostname (":port" stripped, IDNA, RFC 1123,
// at most 253 characters); an invalid name is never written.
package hosts
