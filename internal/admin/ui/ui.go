// Package ui is tcplb's dashboard: one self-contained page, embedded.
//
// The page polls the admin JSON API of the same origin (GET /api/v1/pools)
// once a second and drains or enables backends through it. Everything it
// needs is compiled into the binary: nothing is fetched from another origin,
// and the Content-Security-Policy that [Handler] sends forbids it.
//
// Typical usage, on the admin listener's mux:
//
//	mux := http.NewServeMux()
//	mux.Handle("/api/", api)       // the JSON API of package admin
//	mux.Handle("/", ui.Handler())  // GET / and GET /ui/...
//
// The page uses relative URLs, so it also works behind a reverse proxy that
// serves the admin listener under a path prefix, as long as the API is under
// the same prefix.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"path"
	"sync"
	"time"
)

//go:embed static
var static embed.FS

// contentSecurityPolicy allows the page to load its own script, style and icon
// and to call the API of its own origin, and nothing else.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self'; connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

// asset is one embedded file, ready to serve.
type asset struct {
	name        string // for http.ServeContent
	contentType string
	etag        string
	body        []byte
}

// routes maps a request path to the embedded file it serves.
var routes = map[string]string{
	"/":               "static/index.html",
	"/ui/app.js":      "static/app.js",
	"/ui/style.css":   "static/style.css",
	"/ui/favicon.svg": "static/favicon.svg",
}

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// loadAssets reads the embedded files once. A missing file is a build
// mistake, so it panics.
var loadAssets = sync.OnceValue(func() map[string]*asset {
	assets := make(map[string]*asset, len(routes))
	for route, name := range routes {
		body, err := static.ReadFile(name)
		if err != nil {
			panic("ui: embedded file missing: " + err.Error())
		}
		sum := sha256.Sum256(body)
		assets[route] = &asset{
			name:        path.Base(name),
			contentType: contentTypes[path.Ext(name)],
			etag:        `"` + hex.EncodeToString(sum[:8]) + `"`,
			body:        body,
		}
	}
	return assets
})

// Handler serves the dashboard: GET / is the page, and GET /ui/app.js,
// /ui/style.css and /ui/favicon.svg are its script, style and icon, all
// embedded in the binary. Any other path is 404, and any method other than
// GET and HEAD is 405.
//
// Responses carry an ETag and "Cache-Control: no-cache", so a browser
// revalidates cheaply and picks up a new dashboard after an upgrade. The
// handler is safe for concurrent use and holds no per-request state.
func Handler() http.Handler {
	assets := loadAssets()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := assets[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("ETag", a.etag)
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// The zero modtime sends no Last-Modified; the ETag does the work.
		http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
	})
}
