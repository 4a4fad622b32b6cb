package discovery

import (
	"context"
	"errors"
	"fmt"
	"github.com/tcplb/tcplb/internal/etcdtest"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tcplb/tcplb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

var _ Source = (*Etcd)(nil)

// etcdChangeLimit is how soon a change in etcd must reach update.
const etcdChangeLimit = time.Second

// etcdRun is an Etcd source running in a test.
type etcdRun struct {
	t       *testing.T
	src     *Etcd
	log     *etcdtest.LogBuffer
	updates chan []tcplb.BackendSpec
	cancel  context.CancelFunc
	done    chan error // Run's result
}

// runEtcd runs an Etcd source for cfg until the test ends, logging to a
// buffer shown if the test fails.
func runEtcd(t *testing.T, cfg EtcdConfig) *etcdRun {
	t.Helper()
	r := &etcdRun{t: t, log: &etcdtest.LogBuffer{}, updates: make(chan []tcplb.BackendSpec, 100), done: make(chan error, 1)}
	r.src = NewEtcd(cfg, slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		r.done <- r.src.Run(ctx, func(specs []tcplb.BackendSpec) {
			select {
			case r.updates <- specs:
			default:
				t.Errorf("update called with %v, but %d updates are unread", specs, len(r.updates))
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			t.Errorf("Run did not return within 5s of the cancel")
		}
		if t.Failed() {
			t.Logf("source log:\n%s", r.log.Tail(16<<10))
		}
	})
	return r
}

// next waits up to d for update, returning the set and how long it took.
func (r *etcdRun) next(d time.Duration) ([]tcplb.BackendSpec, time.Duration) {
	r.t.Helper()
	start := time.Now()
	select {
	case specs := <-r.updates:
		return specs, time.Since(start)
	case <-time.After(d):
		r.t.Fatalf("no update within %v", d)
		return nil, 0
	}
}

// expect waits up to d for update and fails unless it is want.
func (r *etcdRun) expect(d time.Duration, want []tcplb.BackendSpec) time.Duration {
	r.t.Helper()
	got, took := r.next(d)
	if !slices.Equal(got, want) {
		r.t.Fatalf("update(%v), want update(%v)", got, want)
	}
	return took
}

// none fails if an update is waiting. Tests call it before the change
// that must cause the next update: changes arrive in order, so an update
// for an earlier change would show up here or as the wrong next set.
func (r *etcdRun) none() {
	r.t.Helper()
	select {
	case got := <-r.updates:
		r.t.Fatalf("unexpected update(%v)", got)
	default:
	}
}

// waitLog waits up to d until the log holds n lines containing s.
func (r *etcdRun) waitLog(d time.Duration, s string, n int) {
	r.t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		written := r.log.Written() // before the check, so no Write is missed
		if strings.Count(r.log.String(), s) >= n {
			return
		}
		select {
		case <-written:
		case <-deadline.C:
			r.t.Fatalf("log has %d lines with %q after %v, want %d", strings.Count(r.log.String(), s), s, d, n)
		}
	}
}

// stop cancels Run and fails unless it returns context.Canceled within
// limit; it returns how long that took.
func (r *etcdRun) stop(limit time.Duration) time.Duration {
	r.t.Helper()
	start := time.Now()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		if !errors.Is(err, context.Canceled) {
			r.t.Errorf("Run = %v, want context.Canceled", err)
		}
	case <-time.After(limit):
		r.t.Fatalf("Run did not return within %v of the cancel", limit)
	}
	return time.Since(start)
}

func etcdPut(t *testing.T, cli *clientv3.Client, key, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, key, value); err != nil {
		t.Fatalf("Put(%q, %q): %v", key, value, err)
	}
}

func etcdTxn(t *testing.T, cli *clientv3.Client, ops ...clientv3.Op) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
		t.Fatalf("Txn: %v", err)
	}
}

func etcdSpec(addr string, weight int, maxConns int64) tcplb.BackendSpec {
	return tcplb.BackendSpec{Addr: addr, Weight: weight, MaxConns: maxConns}
}

func TestEtcdInitialSet(t *testing.T) {
	t.Parallel()
	endpoint, _ := etcdtest.StartEndpoint(t) // killed at cleanup, after Run has ended
	cli := etcdtest.NewClient(t, endpoint)
	for k, v := range map[string]string{
		"/t/10.0.0.1:3001":  "",
		"/t/web-2":          "10.0.0.2:3001",
		"/t/web-3":          `{"addr": "10.0.0.3:3001", "weight": 4, "max_conns": 100}`,
		"/t/10.0.0.4:3001":  `{"weight": 2}`,
		"/t/[::1]:3005":     " \n",
		"/t/web-6":          "  app-6.internal:3006\n",
		"/other/10.9.9.9:1": "",
		"/t2/10.9.9.9:2":    "",
	} {
		etcdPut(t, cli, k, v)
	}
	r := runEtcd(t, EtcdConfig{Endpoints: []string{endpoint}, Prefix: "/t/"})
	took := r.expect(5*time.Second, []tcplb.BackendSpec{
		etcdSpec("10.0.0.1:3001", 1, 0),
		etcdSpec("10.0.0.2:3001", 1, 0),
		etcdSpec("10.0.0.3:3001", 4, 100),
		etcdSpec("10.0.0.4:3001", 2, 0),
		etcdSpec("[::1]:3005", 1, 0),
		etcdSpec("app-6.internal:3006", 1, 0),
	})
	t.Logf("first set after %v", took)
	if got, want := r.src.String(), "etcd /t/"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestEtcdChanges(t *testing.T) {
	t.Parallel()
	e := etcdtest.Start(t)
	cli := e.Client()
	etcdPut(t, cli, "/c/a", "10.0.0.1:1")
	r := runEtcd(t, EtcdConfig{Endpoints: []string{e.Endpoint()}, Prefix: "/c/"})
	r.expect(5*time.Second, []tcplb.BackendSpec{etcdSpec("10.0.0.1:1", 1, 0)})

	steps := []struct {
		name   string
		change func()
		want   []tcplb.BackendSpec // nil: no update
	}{
		{"add", func() { etcdPut(t, cli, "/c/b", "10.0.0.2:1") },
			[]tcplb.BackendSpec{etcdSpec("10.0.0.1:1", 1, 0), etcdSpec("10.0.0.2:1", 1, 0)}},
		{"reweight", func() { etcdPut(t, cli, "/c/b", `{"addr": "10.0.0.2:1", "weight": 3}`) },
			[]tcplb.BackendSpec{etcdSpec("10.0.0.1:1", 1, 0), etcdSpec("10.0.0.2:1", 3, 0)}},
		{"same value again", func() { etcdPut(t, cli, "/c/a", "10.0.0.1:1") }, nil},
		{"unrelated key", func() { etcdPut(t, cli, "/d/x", "10.0.0.9:1") }, nil},
		{"delete", func() { etcdTxn(t, cli, clientv3.OpDelete("/c/a")) },
			[]tcplb.BackendSpec{etcdSpec("10.0.0.2:1", 3, 0)}},
		{"one transaction, one update", func() {
			etcdTxn(t, cli, clientv3.OpPut("/c/d", "10.0.0.4:1"), clientv3.OpPut("/c/c", "10.0.0.3:1"), clientv3.OpDelete("/c/b"))
		}, []tcplb.BackendSpec{etcdSpec("10.0.0.3:1", 1, 0), etcdSpec("10.0.0.4:1", 1, 0)}},
		{"new address", func() { etcdPut(t, cli, "/c/c", "10.0.0.33:1") },
			[]tcplb.BackendSpec{etcdSpec("10.0.0.33:1", 1, 0), etcdSpec("10.0.0.4:1", 1, 0)}},
		{"max_conns", func() { etcdPut(t, cli, "/c/d", `{"addr": "10.0.0.4:1", "max_conns": 7}`) },
			[]tcplb.BackendSpec{etcdSpec("10.0.0.33:1", 1, 0), etcdSpec("10.0.0.4:1", 1, 7)}},
	}
	var worst time.Duration
	for _, s := range steps {
		r.none()
		start := time.Now()
		s.change()
		if s.want == nil {
			continue // the next step's update shows that none came for this one
		}
		r.expect(5*time.Second, s.want)
		took := time.Since(start)
		t.Logf("%s: update after %v", s.name, took)
		if took >= etcdChangeLimit {
			t.Errorf("%s: update after %v, want under %v", s.name, took, etcdChangeLimit)
		}
		worst = max(worst, took)
	}
	t.Logf("slowest change: %v", worst)
}

func TestEtcdInvalidEntries(t *testing.T) {
	t.Parallel()
	e := etcdtest.Start(t)
	cli := e.Client()
	bad := map[string]string{
		"/i/not-an-address": "",
		"/i/bad-text":       "not an address",
		"/i/port-0":         "10.0.0.5:0",
		"/i/weight-0":       `{"addr": "10.0.0.6:1", "weight": 0}`,
		"/i/weight-257":     `{"addr": "10.0.0.7:1", "weight": 257}`,
		"/i/broken-json":    `{"addr": "10.0.0.8:1"`,
		"/i/unknown-field":  `{"adr": "10.0.0.9:1"}`,
		"/i/negative-max":   `{"addr": "10.0.0.10:1", "max_conns": -1}`,
	}
	for k, v := range bad {
		etcdPut(t, cli, k, v)
	}
	etcdPut(t, cli, "/i/10.0.0.1:1", "")
	r := runEtcd(t, EtcdConfig{Endpoints: []string{e.Endpoint()}, Prefix: "/i/"})
	r.expect(5*time.Second, []tcplb.BackendSpec{etcdSpec("10.0.0.1:1", 1, 0)})
	for k := range bad {
		if !strings.Contains(r.log.String(), `skipping it" source="etcd /i/" key=`+k+" ") {
			t.Errorf("log has no line skipping key %s", k)
		}
	}

	// A valid key turned invalid keeps its backend; a new valid key
	// still applies.
	etcdPut(t, cli, "/i/10.0.0.1:1", `{"weight": -1}`)
	r.waitLog(5*time.Second, `keeping its previous value" source="etcd /i/" key=/i/10.0.0.1:1 `, 1)
	r.none()
	etcdPut(t, cli, "/i/10.0.0.2:1", "")
	r.expect(5*time.Second, []tcplb.BackendSpec{etcdSpec("10.0.0.1:1", 1, 0), etcdSpec("10.0.0.2:1", 1, 0)})

	// A second key for an address is logged; the first key's spec is used.
	etcdPut(t, cli, "/i/z-dup", `{"addr": "10.0.0.2:1", "weight": 9}`)
	r.waitLog(5*time.Second, `two etcd keys give the same backend; using the first" source="etcd /i/" key=/i/z-dup first=/i/10.0.0.2:1 `, 1)
	r.none()
	etcdPut(t, cli, "/i/10.0.0.3:1", "")
	r.expect(5*time.Second, []tcplb.BackendSpec{etcdSpec("10.0.0.1:1", 1, 0), etcdSpec("10.0.0.2:1", 1, 0), etcdSpec("10.0.0.3:1", 1, 0)})
}

func TestEtcdEmptyPrefix(t *testing.T) {
	t.Parallel()
	e := etcdtest.Start(t)
	cli := e.Client()
	etcdPut(t, cli, "/e/invalid", "no port") // a prefix with only invalid keys is empty too
	r := runEtcd(t, EtcdConfig{Endpoints: []string{e.Endpoint()}, Prefix: "/e/"})
	const empty = "no backends under the etcd prefix"
	r.waitLog(5*time.Second, empty, 1)
	r.none()

	etcdPut(t, cli, "/e/10.0.0.1:1", "")
	r.expect(5*time.Second, []tcplb.BackendSpec{etcdSpec("10.0.0.1:1", 1, 0)})

	// Deleting every key passes no empty set: the last set stays.
	etcdTxn(t, cli, clientv3.OpDelete("/e/", clientv3.WithPrefix()))
	r.waitLog(5*time.Second, empty, 2)
	r.none()
	etcdPut(t, cli, "/e/10.0.0.2:1", "")
	r.expect(5*time.Second, []tcplb.BackendSpec{etcdSpec("10.0.0.2:1", 1, 0)})

	// Back to the last set passed: nothing to pass on.
	etcdTxn(t, cli, clientv3.OpDelete("/e/", clientv3.WithPrefix()))
	r.waitLog(5*time.Second, empty, 3)
	etcdPut(t, cli, "/e/10.0.0.2:1", "")
	etcdPut(t, cli, "/e/10.0.0.3:1", "")
	r.expect(5*time.Second, []tcplb.BackendSpec{etcdSpec("10.0.0.2:1", 1, 0), etcdSpec("10.0.0.3:1", 1, 0)})
}

func TestEtcdRestart(t *testing.T) {
	t.Parallel()
	e := etcdtest.Start(t)
	cli := e.Client()
	etcdPut(t, cli, "/r/10.0.0.1:1", "")
	r := runEtcd(t, EtcdConfig{Endpoints: []string{e.Endpoint()}, Prefix: "/r/", DialTimeout: 500 * time.Millisecond})
	r.expect(5*time.Second, []tcplb.BackendSpec{etcdSpec("10.0.0.1:1", 1, 0)})

	// Kill etcd: the loss is logged, a read is retried and fails, and the
	// set stays.
	down := time.Now()
	e.Stop()
	r.waitLog(10*time.Second, "err=\""+errEtcdUnreachable.Error()+"\"", 1)
	t.Logf("outage logged after %v", time.Since(down))
	r.waitLog(10*time.Second, `err="reading /r/: no endpoint answered within 500ms"`, 1)
	r.none()

	// Start it again on the same ports and data; a change made then
	// arrives, and so do later ones, within the limit.
	e.Restart()
	up := time.Now()
	etcdPut(t, cli, "/r/10.0.0.2:1", "")
	r.expect(15*time.Second, []tcplb.BackendSpec{etcdSpec("10.0.0.1:1", 1, 0), etcdSpec("10.0.0.2:1", 1, 0)})
	t.Logf("outage %v; first change after the restart arrived %v after it", up.Sub(down).Round(time.Millisecond), time.Since(up))
	for i := 3; i <= 5; i++ {
		r.none()
		start := time.Now()
		etcdPut(t, cli, fmt.Sprintf("/r/10.0.0.%d:1", i), "")
		got, _ := r.next(5 * time.Second)
		took := time.Since(start)
		if len(got) != i {
			t.Fatalf("update(%v) after adding backend %d, want %d backends", got, i, i)
		}
		if took >= etcdChangeLimit {
			t.Errorf("change %d after the restart: update after %v, want under %v", i, took, etcdChangeLimit)
		}
		t.Logf("change %d after the restart: update after %v", i, took)
	}
}

func TestEtcdAuth(t *testing.T) {
	t.Parallel()
	e := etcdtest.Start(t)
	cli := e.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, step := range []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "lb"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "lb", "/a/", clientv3.GetPrefixRangeEnd("/a/"), clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error { _, err := cli.UserAdd(ctx, "lb", "lbpw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "lb", "lb"); return err },
		func() error { _, err := cli.Put(ctx, "/a/10.0.0.1:1", ""); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("setting up auth: %v", err)
		}
	}
	root, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint()}, Username: "root", Password: "rootpw", Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()

	t.Run("wrong password", func(t *testing.T) {
		r := runEtcd(t, EtcdConfig{Endpoints: []string{e.Endpoint()}, Prefix: "/a/", Username: "lb", Password: "nope"})
		r.waitLog(5*time.Second, "authentication failed", 1)
		r.none()
		r.stop(time.Second)
	})
	t.Run("read-only user", func(t *testing.T) {
		r := runEtcd(t, EtcdConfig{Endpoints: []string{e.Endpoint()}, Prefix: "/a/", Username: "lb", Password: "lbpw"})
		r.expect(5*time.Second, []tcplb.BackendSpec{etcdSpec("10.0.0.1:1", 1, 0)})
		start := time.Now()
		etcdPut(t, root, "/a/10.0.0.2:1", "")
		r.expect(5*time.Second, []tcplb.BackendSpec{etcdSpec("10.0.0.1:1", 1, 0), etcdSpec("10.0.0.2:1", 1, 0)})
		if took := time.Since(start); took >= etcdChangeLimit {
			t.Errorf("update after %v, want under %v", took, etcdChangeLimit)
		}
	})
	t.Run("no permission", func(t *testing.T) {
		r := runEtcd(t, EtcdConfig{Endpoints: []string{e.Endpoint()}, Prefix: "/b/", Username: "lb", Password: "lbpw"})
		r.waitLog(5*time.Second, "permission denied", 1)
		r.none()
	})
}

func TestEtcdCancel(t *testing.T) {
	t.Parallel()
	t.Run("watching", func(t *testing.T) {
		t.Parallel()
		endpoint, _ := etcdtest.StartEndpoint(t)
		etcdPut(t, etcdtest.NewClient(t, endpoint), "/x/10.0.0.1:1", "")
		r := runEtcd(t, EtcdConfig{Endpoints: []string{endpoint}, Prefix: "/x/"})
		r.expect(5*time.Second, []tcplb.BackendSpec{etcdSpec("10.0.0.1:1", 1, 0)})
		t.Logf("Run returned %v after the cancel", r.stop(time.Second))
	})
	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		// Nothing listens there, and a read would wait 10s for a
		// connection: the cancel must end it.
		r := runEtcd(t, EtcdConfig{Endpoints: []string{"http://" + etcdtest.FreePort(t)}, Prefix: "/x/", DialTimeout: 10 * time.Second})
		t.Logf("Run returned %v after the cancel", r.stop(time.Second))
		r.none()
	})
	t.Run("retrying", func(t *testing.T) {
		t.Parallel()
		r := runEtcd(t, EtcdConfig{Endpoints: []string{"http://" + etcdtest.FreePort(t)}, Prefix: "/x/", DialTimeout: 100 * time.Millisecond})
		r.waitLog(5*time.Second, "etcd watch ended", 2)
		r.none()
		t.Logf("Run returned %v after the cancel", r.stop(time.Second))
	})
	t.Run("invalid config", func(t *testing.T) {
		t.Parallel()
		err := NewEtcd(EtcdConfig{Prefix: "/x/"}, nil).Run(context.Background(), func([]tcplb.BackendSpec) {})
		if err == nil || !strings.Contains(err.Error(), "endpoints") {
			t.Errorf("Run with no endpoints = %v, want an error about endpoints", err)
		}
	})
}

func TestEtcdConfigValidate(t *testing.T) {
	ok := EtcdConfig{Endpoints: []string{"http://127.0.0.1:2379", "etcd-2:2379"}, Prefix: "/tcplb/app/"}
	tests := []struct {
		name string
		edit func(*EtcdConfig)
		want string // "" for valid
	}{
		{"ok", func(*EtcdConfig) {}, ""},
		{"trailing slash", func(c *EtcdConfig) { c.Endpoints = []string{"http://[::1]:2379/"} }, ""},
		{"auth", func(c *EtcdConfig) { c.Username, c.Password = "u", "p" }, ""},
		{"no endpoints", func(c *EtcdConfig) { c.Endpoints = nil }, "etcd: endpoints: at least one is required"},
		{"https", func(c *EtcdConfig) { c.Endpoints = []string{"https://etcd:2379"} },
			`etcd: endpoint 1: "https://etcd:2379": scheme "https" not supported (want http://host:port; TLS is not supported)`},
		{"no port", func(c *EtcdConfig) { c.Endpoints[1] = "etcd-2" }, `etcd: endpoint 2: "etcd-2": "etcd-2": missing port in address`},
		{"path", func(c *EtcdConfig) { c.Endpoints = []string{"http://etcd:2379/v3"} }, `etcd: endpoint 1: "http://etcd:2379/v3": want http://host:port, with no path, query or user`},
		{"no prefix", func(c *EtcdConfig) { c.Prefix = "" }, `etcd: prefix: required (such as "/tcplb/app/")`},
		{"negative timeout", func(c *EtcdConfig) { c.DialTimeout = -time.Second }, "etcd: dial timeout -1s: must not be negative"},
		{"password only", func(c *EtcdConfig) { c.Password = "p" }, "etcd: username and password: set both or neither"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			c.Endpoints = slices.Clone(ok.Endpoints)
			tt.edit(&c)
			err := c.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEtcdParseValue(t *testing.T) {
	tests := []struct {
		suffix, value string
		want          tcplb.BackendSpec
		err           string
	}{
		{"10.0.0.1:80", "", etcdSpec("10.0.0.1:80", 1, 0), ""},
		{"10.0.0.1:80", " \t\n", etcdSpec("10.0.0.1:80", 1, 0), ""},
		{"web-1", "10.0.0.2:80\n", etcdSpec("10.0.0.2:80", 1, 0), ""},
		{"web-1", `{"addr": "[2001:db8::1]:80", "weight": 256, "max_conns": 5}`, etcdSpec("[2001:db8::1]:80", 256, 5), ""},
		{"10.0.0.3:80", `{"weight": 1}`, etcdSpec("10.0.0.3:80", 1, 0), ""},
		{"10.0.0.3:80", `{}`, etcdSpec("10.0.0.3:80", 1, 0), ""},
		{"10.0.0.3:80", `{"addr": ""}`, etcdSpec("10.0.0.3:80", 1, 0), ""},
		{"web-1", "", etcdSpec("", 0, 0), `address from the key: "web-1": missing port in address`},
		{"web-1", "10.0.0.2", etcdSpec("", 0, 0), `address from the value: "10.0.0.2": missing port in address`},
		{"web-1", `{"weight": 2}`, etcdSpec("", 0, 0), `address from the key: "web-1": missing port in address`},
		{"web-1", `{"addr": ":80"}`, etcdSpec("", 0, 0), `address from the value: ":80": missing host`},
		{"a:1", `{"weight": 0}`, etcdSpec("", 0, 0), "weight 0: must be from 1 to 256"},
		{"a:1", `{"weight": 257}`, etcdSpec("", 0, 0), "weight 257: must be from 1 to 256"},
		{"a:1", `{"weight": 1.5}`, etcdSpec("", 0, 0), "invalid JSON: cannot unmarshal number 1.5 into Go struct field etcdJSON.weight of type int"},
		{"a:1", `{"max_conns": -1}`, etcdSpec("", 0, 0), "max_conns -1: must not be negative"},
		{"a:1", `{"adr": "b:2"}`, etcdSpec("", 0, 0), `invalid JSON: unknown field "adr"`},
		{"a:1", `{"addr": "b:2"`, etcdSpec("", 0, 0), "invalid JSON: unexpected EOF"},
		{"a:1", `{"addr": "b:2"} {}`, etcdSpec("", 0, 0), "invalid JSON: data after the object"},
		{"a:1", `"b:2"`, etcdSpec("", 0, 0), `address from the value: "\"b:2\"": `},
	}
	for _, tt := range tests {
		got, err := parseEtcdValue(tt.suffix, []byte(tt.value))
		if tt.err == "" {
			if err != nil || got != tt.want {
				t.Errorf("parseEtcdValue(%q, %q) = %v, %v, want %v, nil", tt.suffix, tt.value, got, err, tt.want)
			}
			continue
		}
		if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
			t.Errorf("parseEtcdValue(%q, %q) = %v, %v, want error %q", tt.suffix, tt.value, got, err, tt.err)
		}
	}
}

func FuzzEtcdParseValue(f *testing.F) {
	for _, s := range []struct{ suffix, value string }{
		{"10.0.0.1:80", ""},
		{"web", "10.0.0.2:80"},
		{"web", `{"addr": "[::1]:80", "weight": 3, "max_conns": 9}`},
		{"10.0.0.1:80", `{"weight": 0}`},
		{"x", `{"addr": 1}`},
		{"x", "{"},
	} {
		f.Add(s.suffix, []byte(s.value))
	}
	f.Fuzz(func(t *testing.T, suffix string, value []byte) {
		s, err := parseEtcdValue(suffix, value)
		if err != nil {
			return
		}
		if err := tcplb.CheckAddr(s.Addr); err != nil {
			t.Errorf("parseEtcdValue(%q, %q) = %v with an invalid address: %v", suffix, value, s, err)
		}
		if s.Weight < 1 || s.Weight > tcplb.MaxWeight || s.MaxConns < 0 {
			t.Errorf("parseEtcdValue(%q, %q) = %v, out of range", suffix, value, s)
		}
		if _, err := tcplb.NewBackend(s.Addr, s.Weight); err != nil {
			t.Errorf("parseEtcdValue(%q, %q) = %v, which NewBackend refuses: %v", suffix, value, s, err)
		}
	})
}
