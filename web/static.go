package web

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// assets is the embedded static directory, rooted at its contents.
var assets = func() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // impossible: "static" is a valid path and is embedded
	}
	return sub
}()

func serveIndex(w http.ResponseWriter, r *http.Request) {
	serveAsset(w, r, "index.html")
}

// staticFiles serves the embedded assets, without directory listings.
func staticFiles() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Path
		if name == "" || strings.HasSuffix(name, "/") || !fs.ValidPath(name) || path.Clean(name) != name {
			http.NotFound(w, r)
			return
		}
		serveAsset(w, r, name)
	})
}

func serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	f, err := assets.Open(name)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		http.NotFound(w, r)
		return
	}
	// Embedded files have no modification time, so there is nothing to
	// revalidate against; no-cache makes an upgraded binary's assets load
	// at once instead of mixing with a stale page.
	w.Header().Set("Cache-Control", "no-cache")
	rs, ok := f.(io.ReadSeeker) // embed.FS files are
	if !ok {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	http.ServeContent(w, r, name, st.ModTime(), rs)
}
