package safefile

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// reserve makes sure the file w is open on has room for data (which is
// longer than its current size) before any of its bytes change: it
// allocates the blocks with fallocate(2) keeping the size, or, where the
// file system cannot, writes data's tail past the end first. A full disk
// fails here, with the file as it was.
func reserve(w *os.File, size int64, data []byte) error {
	err := unix.Fallocate(int(w.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, int64(len(data)))
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) {
		return writeTail(w, size, data)
	}
	return err
}
