//go:build !linux

package safefile

import "os"

// reserve makes sure the file w is open on has room for data (which is
// longer than its current size) before any of its bytes change, by
// writing data's tail past the end first. A full disk fails here, with
// the file's first size bytes as they were.
func reserve(w *os.File, size int64, data []byte) error {
	return writeTail(w, size, data)
}
