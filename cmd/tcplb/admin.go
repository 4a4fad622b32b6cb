package main

import (
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tcplb/tcplb/internal/admin"
	"github.com/tcplb/tcplb/internal/admin/ui"
)

// adminServer is the admin HTTP listener. Its handler is swapped on each
// reload, so it always shows the running pools and listeners.
type adminServer struct {
	listen  string // as configured
	ln      *netListener
	srv     *http.Server
	handler atomic.Pointer[http.Handler]
}

func newAdminServer(listen string, ln *netListener, log *slog.Logger) *adminServer {
	a := &adminServer{listen: listen, ln: ln}
	a.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			(*a.handler.Load()).ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	nothing := http.Handler(http.NotFoundHandler())
	a.handler.Store(&nothing)
	return a
}

// start serves the admin listener; apply calls it once the handler shows
// the configuration, so that the first scrape does not get a 404.
func (a *adminServer) start(log *slog.Logger) {
	go a.srv.Serve(a.ln)
	log.Info("admin listening", "addr", a.ln.Addr().String(), "dashboard", "http://"+a.ln.Addr().String()+"/")
}

func (a *adminServer) update(c admin.Config) {
	h := admin.New(c)
	a.handler.Store(&h)
}

// close closes the admin listener, and forgets it, so that its port is
// free and an upgrade does not pass it on.
func (a *adminServer) close() {
	a.srv.Close()
	a.ln.forget()
}

// adminConfig describes the running pools and listeners to the admin
// handler. s.mu is held.
func (s *server) adminConfig() admin.Config {
	c := admin.Config{
		Token:          s.cfg.Admin.Token,
		ProtectMetrics: s.cfg.Admin.ProtectMetrics,
		UI:             ui.Handler(),
		Collectors:     []prometheus.Collector{reloadCollector{s}},
	}
	for _, lc := range s.cfg.Listeners {
		l := s.listeners[listenKey(lc)]
		c.Listeners = append(c.Listeners, admin.Listener{Name: lc.Name, Pool: lc.Pool, Balancer: l.lb, UDP: l.udp})
	}
	for _, pc := range s.cfg.Pools {
		c.Pools = append(c.Pools, admin.Pool{Pool: s.pools[pc.Name], Strategy: pc.Strategy})
	}
	return c
}

// reloadCollector exports the reload counters.
type reloadCollector struct{ s *server }

var (
	reloadsDesc = prometheus.NewDesc("tcplb_reloads_total",
		"Config reloads (SIGHUP), by result: success, or failure (the running config was kept).", []string{"result"}, nil)
	lastReloadDesc = prometheus.NewDesc("tcplb_config_last_reload_successful",
		"1 if the last config reload succeeded (or there was none), 0 if it failed.", nil, nil)
)

func (c reloadCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- reloadsDesc
	ch <- lastReloadDesc
}

func (c reloadCollector) Collect(ch chan<- prometheus.Metric) {
	total, failed := c.s.reloads.Load(), c.s.reloadFailures.Load()
	ch <- prometheus.MustNewConstMetric(reloadsDesc, prometheus.CounterValue, float64(total-failed), "success")
	ch <- prometheus.MustNewConstMetric(reloadsDesc, prometheus.CounterValue, float64(failed), "failure")
	ok := 0.0
	if c.s.lastReloadOK.Load() {
		ok = 1
	}
	ch <- prometheus.MustNewConstMetric(lastReloadDesc, prometheus.GaugeValue, ok)
}
