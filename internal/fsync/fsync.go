// Package fsync makes file writes durable: an fsync of a directory after a
// file is created or renamed in it, and a whole-file replacement through a
// temporary file that readers never see half written.
package fsync

import (
	"io/fs"
	"os"
	"path/filepath"
)

// Dir fsyncs the directory dir, so that the names created, renamed or
// removed in it survive a crash (fsync(2): syncing a file does not sync
// the directory entry that names it).
func Dir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// WriteFile replaces path with data, mode perm: it writes a temporary file
// in the same directory, fsyncs it, renames it over path and fsyncs the
// directory. Readers see the old content or the new, never a part, and
// after a crash path holds one or the other. On error the temporary file
// is removed and path is left as it was (unless the directory fsync is
// what failed, after the rename).
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return Dir(dir)
}
