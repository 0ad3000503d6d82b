// Package safefile changes files that belong to the user — the hosts file,
// an env file — without ever losing a byte of them: not on a full disk, not
// when siteplex is killed, not when an editor writes the file at the same
// moment, and not for a hostile file (a device, a dangling symlink, a
// planted link in the backup folder). The hosts writer (package hosts) and
// the env-file writer (package sites) both go through Update; the rules
// are documented for users in docs/hosts.md ("Safe writing") and
// docs/use.md.
//
// Update(ctx, path, opts, edit):
//
//   - follows symlinks to a regular file; a dangling symlink, a device or
//     a folder is refused (*NotRegularError, *DanglingLinkError);
//   - takes an exclusive flock(2) on the file and re-reads it under the lock;
//   - finishes or rolls back an in-place write that a killed siteplex left
//     behind (Result.Recovered says which);
//   - calls edit with the bytes read; equal bytes back mean "no change",
//     and nothing is written at all;
//   - checks that it may open the file for writing before it writes
//     anything (*PermissionError);
//   - saves a pristine copy before the first change ever, and a rotating
//     backup before every change, in a private folder (PrivateDir);
//   - writes a temporary file beside the file with its mode, owner and
//     extended attributes, fsyncs it, checks that the file is still what
//     was read (size, mtime, SHA-256), renames it over the file and fsyncs
//     the folder;
//   - rewrites in place instead where a rename cannot keep the file as it
//     is: a mount point (EBUSY, EXDEV: Docker's /etc/hosts), a folder this
//     user may not write, an owner or attribute that cannot be carried
//     over, or hard links. The in-place path keeps the old and the new
//     content in an fsynced intent file next to the backups, reserves the
//     space first (fallocate, or writing the new tail first), writes and
//     fsyncs the new bytes, and only then truncates;
//   - when the file changed between the read and the replace, re-reads it
//     and applies edit again (up to Options.Attempts times), and otherwise
//     gives up with a *ConcurrentChangeError; a concurrent change is never
//     overwritten.
//
// StateDir and PrivateDir find and check the folder backups go to; Backups
// lists the rotating backups Update made, and Restore puts one back (through
// Update, so with the same guarantees).
package safefile
