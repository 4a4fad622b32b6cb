package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/tcplb/tcplb/internal/admin/ui"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(ui.Handler())
	t.Cleanup(srv.Close)

	tests := []struct {
		method, path string
		wantStatus   int
		wantType     string // prefix of Content-Type, when 200
		wantBody     string // substring of the body, when 200
	}{
		{"GET", "/", 200, "text/html", `<script src="ui/app.js"`},
		{"HEAD", "/", 200, "text/html", ""},
		{"GET", "/ui/app.js", 200, "text/javascript", "api/v1/"},
		{"GET", "/ui/style.css", 200, "text/css", "prefers-color-scheme"},
		{"GET", "/ui/favicon.svg", 200, "image/svg+xml", "<svg"},
		{"GET", "/index.html", 404, "", ""},
		{"GET", "/ui/", 404, "", ""},
		{"GET", "/api/v1/pools", 404, "", ""},
		{"POST", "/", 405, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("%s %s = %d, want %d", tt.method, tt.path, resp.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus != 200 {
				return
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.wantType) {
				t.Errorf("Content-Type = %q, want %s...", ct, tt.wantType)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self'") {
				t.Errorf("Content-Security-Policy = %q, want connect-src 'self'", csp)
			}
			if !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("body does not contain %q", tt.wantBody)
			}
		})
	}

	t.Run("ETag", func(t *testing.T) {
		resp, err := srv.Client().Get(srv.URL + "/ui/app.js")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		etag := resp.Header.Get("ETag")
		if etag == "" {
			t.Fatal("no ETag")
		}
		req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/ui/app.js", nil)
		req.Header.Set("If-None-Match", etag)
		resp, err = srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("GET with If-None-Match = %d, want 304", resp.StatusCode)
		}
	})
}

// The browser tests below drive the dashboard in a real, headless Chromium
// against fakeAPI. They share one browser, and each opens its own tab.

const (
	browserBudget = 90 * time.Second // the whole browser test
	waitBudget    = 15 * time.Second // one wait for the page
)

// findBrowser returns the path of Chromium or Chrome, or fails the test.
func findBrowser(t *testing.T) string {
	t.Helper()
	names := []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("no browser for the dashboard tests: none of %s is in PATH; install one (apt-get install chromium)", strings.Join(names, ", "))
	return ""
}

// startBrowser starts a headless browser for the test and returns its
// context. The browser stops when the test ends or after browserBudget.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	path := findBrowser(t)
	ctx, cancel := context.WithTimeout(t.Context(), browserBudget)
	t.Cleanup(cancel)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.WindowSize(1360, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc) // waits for the browser process to exit
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return browserCtx
}

// serve starts the dashboard and api on 127.0.0.1, mounted as the admin
// listener mounts them.
func serve(t *testing.T, api http.Handler) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/api/", api)
	mux.Handle("/", ui.Handler())
	srv := httptest.NewServer(mux) // listens on 127.0.0.1:0
	t.Cleanup(srv.Close)
	return srv
}

// page is one browser tab on the dashboard.
type page struct {
	t   *testing.T
	ctx context.Context
}

// openTab opens a new tab on the browser; it closes when the test ends.
func openTab(t *testing.T, browser context.Context) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	return &page{t: t, ctx: ctx}
}

func (p *page) navigate(url string) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.Navigate(url)); err != nil {
		p.t.Fatalf("navigate to %s: %v", url, err)
	}
}

// waitFor polls the JavaScript expression expr until it is truthy and
// returns its value. It fails the test after waitBudget.
func waitFor[T any](p *page, what, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitBudget)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Poll[T](expr,
		chromedp.WithPollingInterval(50*time.Millisecond),
		chromedp.WithPollingTimeout(waitBudget)))
	if err != nil {
		p.t.Fatalf("waiting for %s: %v\npage: %s", what, err, p.describe())
	}
	return v
}

// eval evaluates expr in the page.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitBudget)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// click clicks the first element that the CSS selector sel matches.
func (p *page) click(sel string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitBudget)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)); err != nil {
		p.t.Fatalf("click %s: %v\npage: %s", sel, err, p.describe())
	}
}

// typeInto replaces the value of the input sel with text, as typed keys.
func (p *page) typeInto(sel, text string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitBudget)
	defer cancel()
	clearValue := chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%s).value = ""`, js(sel)))
	if err := chromedp.Do(ctx, clearValue, chromedp.SendKeys(chromedp.CSS(sel), text)); err != nil {
		p.t.Fatalf("type into %s: %v", sel, err)
	}
}

// describe returns the status line and the visible text, for failures.
func (p *page) describe() string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.ctx), 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return s
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// rowSel is the CSS selector of the row of a backend.
func rowSel(pool, addr string) string {
	return fmt.Sprintf("tr[data-pool=%s][data-addr=%s]", js(pool), js(addr))
}

// fieldText is a JavaScript expression for the trimmed text of a field of a
// row, or null when there is no such row.
func fieldText(pool, addr, field string) string {
	return fmt.Sprintf(`(document.querySelector(%s)?.textContent ?? null)`,
		js(rowSel(pool, addr)+` [data-field="`+field+`"]`))
}

func TestDashboard(t *testing.T) {
	browser := startBrowser(t)

	t.Run("rows", func(t *testing.T) {
		api := newFakeAPI()
		srv := serve(t, api)
		p := openTab(t, browser)
		p.navigate(srv.URL)
		waitFor[bool](p, "one row per backend", fmt.Sprintf(`document.querySelectorAll("tr[data-addr]").length === %d`, len(wantStates)))

		type row struct{ Pool, Addr, State, Title, Button string }
		rows := eval[[]row](p, `[...document.querySelectorAll("tr[data-addr]")].map(tr => ({
			Pool: tr.dataset.pool, Addr: tr.dataset.addr,
			State: tr.querySelector('[data-field="state"] .badge').textContent,
			Title: tr.querySelector('[data-field="state"]').title,
			Button: tr.querySelector("button[data-action]")?.dataset.action ?? "",
		}))`)
		for _, r := range rows {
			want, ok := wantStates[[2]string{r.Pool, r.Addr}]
			if !ok {
				t.Errorf("row %s %s: no such backend", r.Pool, r.Addr)
				continue
			}
			if r.State != want {
				t.Errorf("row %s %s: state %q, want %q", r.Pool, r.Addr, r.State, want)
			}
			wantButton := "drain"
			if want == "draining" {
				wantButton = "enable"
			}
			if r.Button != wantButton {
				t.Errorf("row %s %s: button %q, want %q", r.Pool, r.Addr, r.Button, wantButton)
			}
		}

		// The reason is in the tooltip and in the small text; slow start shows.
		if got := eval[string](p, fieldText("db", "127.0.0.1:5433", "state")); !strings.Contains(got, "5 connect errors in 10s") {
			t.Errorf("state cell of an ejected backend = %q, want its reason", got)
		}
		title := eval[string](p, fmt.Sprintf(`document.querySelector(%s).title`, js(rowSel("db", "127.0.0.1:5433")+` [data-field="state"]`)))
		if !strings.Contains(title, "5 connect errors in 10s") {
			t.Errorf("state tooltip of an ejected backend = %q, want its reason", title)
		}
		if got := eval[string](p, fieldText("app", "127.0.0.1:3003", "state")); !strings.Contains(got, "warming") {
			t.Errorf("state cell of a backend in slow start = %q, want warming", got)
		}
		if got := eval[string](p, fieldText("db", "127.0.0.1:5432", "active")); !strings.Contains(got, "/ 100") {
			t.Errorf("active cell with max_conns = %q, want .../ 100", got)
		}

		head := eval[string](p, `document.querySelector('section[data-pool="app"] header').textContent`)
		for _, want := range []string{"app", "round-robin", "3 of 4 available"} {
			if !strings.Contains(head, want) {
				t.Errorf("pool card header = %q, want %q in it", head, want)
			}
		}
		listeners := eval[string](p, `document.querySelector("#listeners").textContent`)
		for _, want := range []string{"main", "postgres", "active", "accepted", "rejected"} {
			if !strings.Contains(listeners, want) {
				t.Errorf("listener summary = %q, want %q in it", listeners, want)
			}
		}
		// A UDP listener shows its sessions, datagrams and drops.
		udp := eval[string](p, `document.querySelector('li.listener[data-listener="dns"]').textContent`)
		for _, want := range []string{"dns", "udp", "7 sessions", "1,234 opened", "4,900 datagrams", "4 dropped"} {
			if !strings.Contains(udp, want) {
				t.Errorf("UDP listener chip = %q, want %q in it", udp, want)
			}
		}
		// A UDP pool's card counts sessions and datagrams per second.
		waitFor[bool](p, "the UDP pool's datagram rate",
			`/^\d+ sessions · [\d.,]+ sessions\/s · [\d.,]+ datagrams\/s · in /.test(document.querySelector('section[data-pool="resolvers"] [data-field="totals"]').textContent)`)
		if got := eval[string](p, fmt.Sprintf(`document.querySelector(%s).title`, js(rowSel("resolvers", "127.0.0.1:5353")+` [data-field="rate"]`))); !strings.Contains(got, "datagrams to the backend") {
			t.Errorf("rate tooltip of a UDP backend = %q, want its datagrams", got)
		}
		waitFor[bool](p, "status live", `document.querySelector("#status").dataset.state === "live"`)
	})

	t.Run("updates in place", func(t *testing.T) {
		api := newFakeAPI()
		srv := serve(t, api)
		p := openTab(t, browser)
		p.navigate(srv.URL)
		const rate = `[data-field="rate"]`
		sel := rowSel("app", "127.0.0.1:3001")
		waitFor[bool](p, "a rate", fmt.Sprintf(`/\d/.test(document.querySelector(%s)?.textContent ?? "")`, js(sel+" "+rate)))

		// Mark the row node and remember where its cells are.
		layout := fmt.Sprintf(`(() => { const tr = document.querySelector(%s);
			return [...tr.cells].map(c => Math.round(c.getBoundingClientRect().left) + ":" + Math.round(c.getBoundingClientRect().width)).join(" ") + " h" + Math.round(tr.getBoundingClientRect().height); })()`, js(sel))
		eval[chromedp.Void](p, fmt.Sprintf(`document.querySelector(%s).dataset.marked = "yes"`, js(sel)))
		before := eval[string](p, layout)
		active := eval[string](p, fieldText("app", "127.0.0.1:3001", "active"))

		got := waitFor[string](p, "active to change", fmt.Sprintf(`(() => { const v = %s; return v !== %s && v; })()`,
			fieldText("app", "127.0.0.1:3001", "active"), js(active)))
		t.Logf("active %s -> %s", active, got)

		// The sparkline fills, the row is the same node, and nothing moved.
		waitFor[bool](p, "3 sparkline samples", fmt.Sprintf(`Number(document.querySelector(%s).dataset.samples) >= 3`, js(sel+" svg")))
		if marked := eval[string](p, fmt.Sprintf(`document.querySelector(%s).dataset.marked ?? ""`, js(sel))); marked != "yes" {
			t.Errorf("the row was re-created between polls; want it updated in place")
		}
		if after := eval[string](p, layout); after != before {
			t.Errorf("cell positions moved between polls:\nbefore %s\nafter  %s", before, after)
		}
	})

	t.Run("drain and enable", func(t *testing.T) {
		api := newFakeAPI()
		gate := make(chan struct{})
		release := sync.OnceFunc(func() { close(gate) })
		api.set(func(f *fakeAPI) { f.gate = gate })
		srv := serve(t, api)
		t.Cleanup(release) // before srv.Close, which waits for the held POST
		p := openTab(t, browser)
		p.navigate(srv.URL)

		const pool, addr = "app", "[::1]:3002"
		sel := rowSel(pool, addr)
		p.click(sel + ` button[data-action="drain"]`)
		waitFor[bool](p, "the button to be disabled while the request runs",
			fmt.Sprintf(`document.querySelector(%s).disabled`, js(sel+" button")))

		const wantURI = "/api/v1/pools/app/backends/%5B%3A%3A1%5D%3A3002/drain"
		posts := api.apiRequests("/api/v1/pools/app/backends/")
		if len(posts) != 1 || posts[0].Method != "POST" || posts[0].URI != wantURI {
			t.Fatalf("requests to the backend = %+v, want one POST %s", posts, wantURI)
		}
		release()

		waitFor[bool](p, "the row to show draining", fmt.Sprintf(`%s?.includes("draining")`, fieldText(pool, addr, "state")))
		waitFor[bool](p, "an enabled Enable button", fmt.Sprintf(`(b => b && !b.disabled && b.textContent === "Enable")(document.querySelector(%s))`,
			js(sel+` button[data-action="enable"]`)))
		if got := api.state(pool, addr); got != "draining" {
			t.Errorf("API state after Drain = %q, want draining", got)
		}

		// And back.
		p.click(sel + ` button[data-action="enable"]`)
		waitFor[bool](p, "a Drain button again", fmt.Sprintf(`(b => b && !b.disabled)(document.querySelector(%s))`, js(sel+` button[data-action="drain"]`)))
		waitFor[bool](p, "the row to show up", fmt.Sprintf(`document.querySelector(%s).textContent === "up"`, js(sel+` [data-field="state"] .badge`)))
		if got := api.state(pool, addr); got != "up" {
			t.Errorf("API state after Enable = %q, want up", got)
		}
	})

	t.Run("action error", func(t *testing.T) {
		api := newFakeAPI()
		api.set(func(f *fakeAPI) { f.actionErr = "backend is pinned by config" })
		srv := serve(t, api)
		p := openTab(t, browser)
		p.navigate(srv.URL)

		sel := rowSel("app", "127.0.0.1:3001")
		p.click(sel + ` button[data-action="drain"]`)
		got := waitFor[string](p, "the error in the row", fmt.Sprintf(`(t => t && t.includes("pinned") && t)(%s)`, fieldText("app", "127.0.0.1:3001", "error")))
		if !strings.Contains(got, "drain failed") {
			t.Errorf("error text = %q, want it to say drain failed", got)
		}
		waitFor[bool](p, "the Drain button enabled again", fmt.Sprintf(`!document.querySelector(%s).disabled`, js(sel+` button[data-action="drain"]`)))
	})

	t.Run("token", func(t *testing.T) {
		api := newFakeAPI()
		api.set(func(f *fakeAPI) { f.token = "s3cret" })
		srv := serve(t, api)
		p := openTab(t, browser)
		p.navigate(srv.URL)

		waitFor[bool](p, "the token form", `!document.querySelector("#token-form").hidden && document.activeElement?.id === "token"`)
		if n := eval[int](p, `document.querySelectorAll("tr[data-addr], button[data-action]").length`); n != 0 {
			t.Errorf("%d rows and buttons before a token was entered, want 0", n)
		}
		waitFor[bool](p, "status to ask for a token", `document.querySelector("#status").dataset.state === "auth"`)

		p.typeInto("#token", "wrong")
		p.click(`#token-form button[type="submit"]`)
		waitFor[bool](p, "the token to be rejected", `!document.querySelector("#token-form").hidden && document.querySelector("#token-message").textContent.includes("did not accept")`)

		p.typeInto("#token", "s3cret")
		p.click(`#token-form button[type="submit"]`)
		waitFor[bool](p, "rows after the right token", fmt.Sprintf(`document.querySelectorAll("tr[data-addr]").length === %d && document.querySelector("#token-form").hidden`, len(wantStates)))
		waitFor[bool](p, "buttons after the right token", `document.querySelectorAll("button[data-action]").length > 0`)
		if got := eval[string](p, `sessionStorage.getItem("tcplb.admin.token") ?? ""`); got != "s3cret" {
			t.Errorf("sessionStorage token = %q, want s3cret", got)
		}

		// Every call after the right token carries it.
		reqs := api.apiRequests("/api/")
		first := slices.IndexFunc(reqs, func(r apiRequest) bool { return r.Auth == "Bearer s3cret" })
		if first < 0 {
			t.Fatalf("no request carried Authorization: Bearer s3cret: %+v", reqs)
		}
		for _, r := range reqs[first:] {
			if r.Auth != "Bearer s3cret" {
				t.Errorf("%s %s: Authorization %q, want Bearer s3cret", r.Method, r.URI, r.Auth)
			}
		}

		// A token that stops working asks again.
		api.set(func(f *fakeAPI) { f.token = "rotated" })
		waitFor[bool](p, "the token form again", `!document.querySelector("#token-form").hidden`)
	})

	t.Run("stale", func(t *testing.T) {
		api := newFakeAPI()
		srv := serve(t, api)
		p := openTab(t, browser)
		p.navigate(srv.URL)
		waitFor[bool](p, "status live", `document.querySelector("#status").dataset.state === "live"`)

		api.set(func(f *fakeAPI) { f.fail = "registry unavailable" })
		waitFor[bool](p, "status stale with the error", `(s => s.dataset.state === "stale" && s.textContent.includes("stale") && s.textContent.includes("registry unavailable"))(document.querySelector("#status"))`)
		// The last data stays on screen.
		if n := eval[int](p, `document.querySelectorAll("tr[data-addr]").length`); n != len(wantStates) {
			t.Errorf("%d rows while stale, want %d", n, len(wantStates))
		}

		api.set(func(f *fakeAPI) { f.fail = "" })
		waitFor[bool](p, "status live again", `document.querySelector("#status").dataset.state === "live"`)
	})

	t.Run("same origin only", func(t *testing.T) {
		api := newFakeAPI()
		srv := serve(t, api)
		p := openTab(t, browser)

		var mu sync.Mutex
		var urls []string
		err := chromedp.Listen(p.ctx, func(ev any) {
			if ev, ok := ev.(*network.EventRequestWillBeSent); ok {
				mu.Lock()
				urls = append(urls, ev.Request.URL)
				mu.Unlock()
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		p.navigate(srv.URL)
		waitFor[bool](p, "2 sparkline samples", fmt.Sprintf(`Number(document.querySelector(%s)?.dataset.samples) >= 2`, js(rowSel("app", "127.0.0.1:3001")+" svg")))

		mu.Lock()
		defer mu.Unlock()
		seen := map[string]bool{}
		for _, u := range urls {
			if !strings.HasPrefix(u, srv.URL+"/") {
				t.Errorf("the page loaded %s, outside %s", u, srv.URL)
			}
			seen[strings.TrimPrefix(u, srv.URL)] = true
		}
		for _, want := range []string{"/", "/ui/app.js", "/ui/style.css", "/api/v1/pools"} {
			if !seen[want] {
				t.Errorf("no request for %s; saw %v", want, urls)
			}
		}
	})

	t.Run("screenshot", func(t *testing.T) {
		api := newFakeAPI()
		srv := serve(t, api)
		p := openTab(t, browser)
		p.navigate(srv.URL)
		waitFor[bool](p, "6 sparkline samples", fmt.Sprintf(`Number(document.querySelector(%s)?.dataset.samples) >= 6`, js(rowSel("app", "127.0.0.1:3001")+" svg")))

		for _, scheme := range []string{"light", "dark"} {
			ctx, cancel := context.WithTimeout(p.ctx, waitBudget)
			_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
			})
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Join(os.TempDir(), "tcplb-dashboard-"+scheme+".png")
			if err := os.WriteFile(name, png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot (%s): %s", scheme, name)
		}
	})
}
