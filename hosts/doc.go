// Package hosts keeps one managed block per project in a hosts file
// (/etc/hosts by default), and nothing else:
//
//	# siteplex begin <project>
//	127.0.0.1 example.gh
//	::1 example.gh
//	# siteplex end <project>
//
// Every byte outside the block is kept as it was: other tools' blocks,
// comments, tabs, CRLF line endings, a UTF-8 BOM, a missing final newline,
// very long lines and the user's own entries for the same names.
//
// The package has two layers.
//
// The pure layer works on []byte and does no I/O: Parse finds the project's
// block (a *MalformedError for a broken one), Doc.Names lists its names,
// Doc.Render returns the file with the block holding exactly the given
// names (an empty list removes the block), Doc.Lines finds the user's own
// entries for a name.
//
// The I/O layer edits a file safely. Update (and its shorthands Apply,
// Remove, RemoveBlock) locks the file with flock(2), re-reads it under the
// lock, writes nothing when nothing changes, saves a pristine copy before
// the first change ever and a rotating backup (5) before every change under
// DefaultBackupDir() ($XDG_STATE_HOME/siteplex or ~/.local/state/siteplex),
// then writes a temporary file in the same folder (same mode and owner),
// fsyncs it and renames it over the file; where rename fails because the
// file is a mount point (EBUSY/EXDEV, as in Docker) it rewrites in place.
// Status reads the file and reports a project's block and, for the system
// file, how the system resolver answers for each name.
//
// Errors are typed so callers choose the exit status and message:
// *InvalidNameError (names refused; the valid ones were still applied),
// *PermissionError (this user may not write the file; the caller puts the
// sudo command line in Command), *MalformedError (a broken block).
//
// The API the terminal UI uses:
//
//	rep, err := hosts.Status(ctx, p.HostsFile, p.Name, names) // which names are in the block
//	res, err := hosts.Apply(ctx, p.HostsFile, p.Name, names)  // res.Changed: whether it wrote
//	res, err := hosts.Remove(ctx, p.HostsFile, p.Name, names)
//	if hosts.NeedsRoot(p.HostsFile) { // or errors.As(err, new(*hosts.PermissionError))
//		argv := hosts.SudoArgv("hosts", "apply", slug, "--hosts-file", p.HostsFile)
//		// tea.ExecProcess(exec.Command(argv[0], argv[1:]...), ...)
//	}
//
// Names are validated with sites.Hostname (":port" stripped, IDNA, RFC 1123,
// at most 253 characters); an invalid name is never written.
package hosts
