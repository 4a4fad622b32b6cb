package discovery

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tcplb/tcplb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
)

// Defaults and limits for Etcd.
const (
	etcdDialTimeout = 5 * time.Second        // EtcdConfig.DialTimeout's default
	etcdRetryMin    = 100 * time.Millisecond // first delay before a fresh read after a failure
	etcdRetryMax    = 5 * time.Second        // delays double up to this

	// gRPC keepalive, so that an etcd member that vanishes without closing
	// the connection is noticed in about 15s. etcd refuses pings that come
	// more often than every 5s (its --grpc-keepalive-min-time).
	etcdKeepAlive        = 10 * time.Second
	etcdKeepAliveTimeout = 5 * time.Second
)

// errEtcdUnreachable ends a watch when the client has lost every endpoint.
var errEtcdUnreachable = errors.New("lost the connection to every etcd endpoint")

// EtcdConfig configures an Etcd source.
type EtcdConfig struct {
	// Endpoints are the etcd cluster's client URLs, "http://host:port"
	// (a bare "host:port" means the same). At least one is required. The
	// client spreads its requests over them and moves to another when one
	// fails. TLS ("https://", client certificates) is not supported.
	Endpoints []string

	// Prefix is the key prefix under which every key is a backend, such
	// as "/tcplb/app/". Required. It is a plain string prefix: end it with
	// "/", or "/tcplb/app" also takes the keys of "/tcplb/app2/".
	Prefix string

	// DialTimeout bounds each connection attempt to an endpoint and each
	// read of the prefix. If zero, 5s is used; it must not be negative.
	DialTimeout time.Duration

	// Username and Password, if set (both or neither), log in with
	// etcd's user and role authentication; the user needs read access to
	// Prefix. Over http the password crosses the network in clear text.
	Username, Password string
}

// Validate reports the first problem with c, naming the field, or nil.
// Run calls it; a daemon may call it earlier to refuse a bad
// configuration when it is loaded.
func (c EtcdConfig) Validate() error {
	if len(c.Endpoints) == 0 {
		return errors.New("etcd: endpoints: at least one is required")
	}
	for i, ep := range c.Endpoints {
		if err := checkEtcdEndpoint(ep); err != nil {
			return fmt.Errorf("etcd: endpoint %d: %v", i+1, err)
		}
	}
	if c.Prefix == "" {
		return errors.New(`etcd: prefix: required (such as "/tcplb/app/")`)
	}
	if c.DialTimeout < 0 {
		return fmt.Errorf("etcd: dial timeout %v: must not be negative", c.DialTimeout)
	}
	if (c.Username == "") != (c.Password == "") {
		return errors.New("etcd: username and password: set both or neither")
	}
	return nil
}

// checkEtcdEndpoint reports why ep is not an endpoint Etcd can use.
func checkEtcdEndpoint(ep string) error {
	hostport := ep
	if strings.Contains(ep, "://") {
		u, err := url.Parse(ep)
		if err != nil {
			return fmt.Errorf("%q: %v", ep, err)
		}
		if u.Scheme != "http" {
			return fmt.Errorf("%q: scheme %q not supported (want http://host:port; TLS is not supported)", ep, u.Scheme)
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return fmt.Errorf("%q: want http://host:port, with no path, query or user", ep)
		}
		hostport = u.Host
	}
	if err := tcplb.CheckAddr(hostport); err != nil {
		return fmt.Errorf("%q: %v", ep, err)
	}
	return nil
}

// Etcd is a Source that reads a pool's backends from the keys under a
// prefix in etcd (v3 API) and watches them.
//
// Every key under the prefix is one backend. The rest of the key, after
// the prefix, is the backend's address when the value does not give one:
//
//	etcdctl put /tcplb/app/10.0.0.1:3001 ''            # 10.0.0.1:3001, weight 1
//	etcdctl put /tcplb/app/web-2 10.0.0.2:3001          # the address as text
//	etcdctl put /tcplb/app/web-3 '{"addr": "10.0.0.3:3001", "weight": 4, "max_conns": 100}'
//	etcdctl put /tcplb/app/10.0.0.4:3001 '{"weight": 2}' # the address from the key
//	etcdctl del /tcplb/app/web-2                        # 10.0.0.2:3001 drains
//
// A value is empty, a "host:port" address as [tcplb.CheckAddr] accepts it,
// or a JSON object (it starts with "{") with the optional fields addr,
// weight (1 to [tcplb.MaxWeight], default 1) and max_conns (0, the
// default, for no limit). Surrounding white space is ignored.
//
// A key whose address, weight or JSON is invalid is logged, naming the
// key, and skipped: a key that had a valid value keeps it, a new key is
// left out, and the other keys still apply. This differs from File, where
// one bad line rejects the file: each key usually has its own writer (a
// backend registering itself, a deploy script), and one writer's mistake
// must not hold up the others. When two keys give the same address, the
// first in key order is used and the other is logged.
//
// An empty set (no valid key under the prefix) is never passed on, as for
// File: it is logged, and the last set stays, so a mistyped prefix, a
// deleted directory or a cluster restored from an old backup cannot empty
// a pool. Drain a pool by stopping it, or by pointing it at a backend that
// refuses connections.
//
// Run reads the prefix, passes the set on, and watches the prefix from
// the revision it read, so a change reaches update within milliseconds;
// update is called once per batch of events, and only when the set
// differs from the last one passed (ignoring order; sets are sorted by
// address). When the watch fails (history compacted, a member without a
// leader, every endpoint unreachable) Run logs it, keeps the last set, and
// starts again with a fresh read and watch, waiting 100ms before the
// first attempt and doubling up to 5s while they fail. The etcd client's
// own logs are dropped; Run logs what matters.
//
// Etcd uses go.etcd.io/etcd/client/v3 and only the stable v3 API (Range,
// Watch, Authenticate); it works with etcd 3.4 and later.
//
// An Etcd holds only its configuration: each Run has its own client and
// state, and String may be called at any time.
type Etcd struct {
	cfg EtcdConfig
	log *slog.Logger
}

// NewEtcd returns an Etcd source for cfg, logging to log (slog.Default()
// if nil). It does not connect; Run does.
func NewEtcd(cfg EtcdConfig, log *slog.Logger) *Etcd {
	if log == nil {
		log = slog.Default()
	}
	cfg.Endpoints = slices.Clone(cfg.Endpoints)
	return &Etcd{cfg: cfg, log: log}
}

// String returns "etcd " and the prefix, for logs.
func (e *Etcd) String() string { return "etcd " + e.cfg.Prefix }

// Run reads and watches the prefix, calling update with each new backend
// set, until ctx ends; then it returns ctx.Err(). It returns at once, with
// an error, if the configuration is invalid (see EtcdConfig.Validate).
// Unreachable endpoints and failed reads are logged and retried; they
// never end Run. See Etcd for what is passed on when.
func (e *Etcd) Run(ctx context.Context, update func([]tcplb.BackendSpec)) error {
	if err := e.cfg.Validate(); err != nil {
		return err
	}
	st := &etcdState{src: e, update: update, keys: make(map[string]tcplb.BackendSpec)}
	var cli *clientv3.Client
	defer func() {
		if cli != nil {
			cli.Close()
		}
	}()
	delay := etcdRetryMin
	for {
		var err error
		if cli == nil {
			cli, err = e.newClient(ctx)
		}
		if err == nil {
			var read bool
			read, err = e.watch(ctx, cli, st)
			if read {
				delay = etcdRetryMin
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Up to a fifth less, so that many balancers do not come back at
		// the same instant after an etcd outage.
		wait := delay - time.Duration(rand.Int64N(int64(delay/5)+1))
		e.log.Warn("etcd watch ended; keeping the last set and reading again", "source", e.String(),
			"backends", len(st.last), "retry_in", wait.Round(time.Millisecond), "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, etcdRetryMax)
	}
}

func (e *Etcd) dialTimeout() time.Duration { return cmp.Or(e.cfg.DialTimeout, etcdDialTimeout) }

// newClient returns a client for e's cluster. Without a username it does
// not connect; with one it logs in, and fails if no endpoint answers.
func (e *Etcd) newClient(ctx context.Context) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:            e.cfg.Endpoints,
		DialTimeout:          e.dialTimeout(),
		DialKeepAliveTime:    etcdKeepAlive,
		DialKeepAliveTimeout: etcdKeepAliveTimeout,
		Username:             e.cfg.Username,
		Password:             e.cfg.Password,
		Context:              ctx,
		Logger:               zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			// gRPC's default reconnection delay grows to 120s; keep it
			// at most etcdRetryMax, so a cluster back from an outage is
			// seen as soon as Run's own retries would see it.
			Backoff:           backoff.Config{BaseDelay: etcdRetryMin, Multiplier: 1.6, Jitter: 0.2, MaxDelay: etcdRetryMax},
			MinConnectTimeout: e.dialTimeout(),
		})},
	})
}

// watch reads the prefix into st, passes the set on, and applies the
// prefix's changes until the watch fails or ctx ends. It reports whether
// the read succeeded, and returns why the watch ended.
func (e *Etcd) watch(ctx context.Context, cli *clientv3.Client, st *etcdState) (read bool, err error) {
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	gctx, gcancel := context.WithTimeout(wctx, e.dialTimeout())
	resp, err := cli.Get(gctx, e.cfg.Prefix, clientv3.WithPrefix())
	gcancel()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return false, fmt.Errorf("reading %s: no endpoint answered within %v", e.cfg.Prefix, e.dialTimeout())
		}
		return false, fmt.Errorf("reading %s: %w", e.cfg.Prefix, err)
	}
	st.reset(resp.Kvs)
	st.publish(nil)

	// The client reconnects by itself and resumes its watches, silently;
	// watchEtcdConn turns a lost connection into an error, so that it is
	// logged and followed by a fresh read.
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchEtcdConn(wctx, cli.ActiveConnection(), cancel)
	}()
	defer func() { <-done }()
	defer cancel(nil) // before <-done

	// WithRequireLeader: a member cut off from its cluster's leader ends
	// the watch instead of leaving it silent.
	wch := cli.Watch(clientv3.WithRequireLeader(wctx), e.cfg.Prefix,
		clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	for wr := range wch {
		if wctx.Err() != nil {
			break
		}
		if err := wr.Err(); err != nil {
			return true, fmt.Errorf("watching %s: %w", e.cfg.Prefix, err)
		}
		if len(wr.Events) == 0 {
			continue // created, or a progress notification
		}
		changed := make(map[string]bool, len(wr.Events))
		for _, ev := range wr.Events {
			key := string(ev.Kv.Key)
			changed[key] = true
			if ev.Type == clientv3.EventTypeDelete {
				delete(st.keys, key)
			} else {
				st.put(key, ev.Kv.Value)
			}
		}
		st.publish(changed)
	}
	if err := context.Cause(wctx); err != nil {
		return true, err
	}
	return true, errors.New("watch closed by the etcd client")
}

// watchEtcdConn calls cancel with errEtcdUnreachable when conn, the etcd
// client's connection, fails: when every endpoint is unreachable. It
// returns then, or when ctx ends.
func watchEtcdConn(ctx context.Context, conn *grpc.ClientConn, cancel context.CancelCauseFunc) {
	for {
		s := conn.GetState()
		if s == connectivity.TransientFailure {
			cancel(errEtcdUnreachable)
			return
		}
		if !conn.WaitForStateChange(ctx, s) {
			return
		}
	}
}

// etcdState is Run's view of the prefix: the backend each valid key
// gives, and the last set passed to update. Only Run's goroutine uses it.
type etcdState struct {
	src    *Etcd
	update func([]tcplb.BackendSpec)
	keys   map[string]tcplb.BackendSpec // key -> its backend; valid keys only
	last   []tcplb.BackendSpec          // the last set passed to update; nil before the first
	empty  bool                         // "no backends" was logged since the last set passed on
}

// put records key's new value; an invalid one is logged and leaves the
// key's previous backend, if any.
func (st *etcdState) put(key string, value []byte) {
	spec, err := parseEtcdValue(strings.TrimPrefix(key, st.src.cfg.Prefix), value)
	if err != nil {
		st.invalid(key, err, st.keys)
		return
	}
	st.keys[key] = spec
}

// reset replaces the keys with kvs, a fresh read of the prefix. A key
// whose new value is invalid keeps its backend from before.
func (st *etcdState) reset(kvs []*mvccpb.KeyValue) {
	old := st.keys
	st.keys = make(map[string]tcplb.BackendSpec, len(kvs))
	for _, kv := range kvs {
		key := string(kv.Key)
		spec, err := parseEtcdValue(strings.TrimPrefix(key, st.src.cfg.Prefix), kv.Value)
		if err != nil {
			st.invalid(key, err, old)
			if spec, ok := old[key]; ok {
				st.keys[key] = spec
			}
			continue
		}
		st.keys[key] = spec
	}
}

// invalid logs that key's value is invalid, and what is used instead:
// its backend in prev, if it has one there.
func (st *etcdState) invalid(key string, err error, prev map[string]tcplb.BackendSpec) {
	if spec, ok := prev[key]; ok {
		st.src.log.Error("invalid etcd backend key; keeping its previous value", "source", st.src.String(),
			"key", key, "addr", spec.Addr, "err", err)
		return
	}
	st.src.log.Error("invalid etcd backend key; skipping it", "source", st.src.String(), "key", key, "err", err)
}

// publish passes the keys' backend set to update, if it is not empty and
// differs from the last one passed. It logs the addresses given by two
// keys when one of them is in changed (every key, if changed is nil).
func (st *etcdState) publish(changed map[string]bool) {
	keys := make([]string, 0, len(st.keys))
	for k := range st.keys {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	specs := make([]tcplb.BackendSpec, 0, len(keys))
	byAddr := make(map[string]string, len(keys)) // address -> the key used for it
	for _, k := range keys {
		s := st.keys[k]
		if first, ok := byAddr[s.Addr]; ok {
			if changed == nil || changed[k] || changed[first] {
				st.src.log.Error("two etcd keys give the same backend; using the first", "source", st.src.String(),
					"key", k, "first", first, "addr", s.Addr)
			}
			continue
		}
		byAddr[s.Addr] = k
		specs = append(specs, s)
	}
	if len(specs) == 0 {
		if !st.empty {
			st.empty = true
			st.src.log.Warn("no backends under the etcd prefix; keeping the last set", "source", st.src.String(),
				"backends", len(st.last))
		}
		return
	}
	st.empty = false
	slices.SortFunc(specs, func(a, b tcplb.BackendSpec) int { return strings.Compare(a.Addr, b.Addr) })
	if st.last != nil && sameBackendSet(specs, st.last) {
		return
	}
	st.last = specs
	st.src.log.Info("backend set changed", "source", st.src.String(), "backends", len(specs))
	st.update(slices.Clone(specs))
}

// etcdJSON is the JSON form of a key's value.
type etcdJSON struct {
	Addr     string `json:"addr"`
	Weight   *int   `json:"weight"`
	MaxConns int64  `json:"max_conns"`
}

// parseEtcdValue returns the backend that a key describes, given suffix,
// the key after the prefix, and its value. See Etcd for the forms.
func parseEtcdValue(suffix string, value []byte) (tcplb.BackendSpec, error) {
	v := bytes.TrimSpace(value)
	spec := tcplb.BackendSpec{Addr: suffix, Weight: 1}
	from := "key"
	switch {
	case len(v) == 0:
	case v[0] == '{':
		var j etcdJSON
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&j); err != nil {
			return tcplb.BackendSpec{}, fmt.Errorf("invalid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
		}
		if dec.InputOffset() != int64(len(v)) {
			return tcplb.BackendSpec{}, fmt.Errorf("invalid JSON: data after the object")
		}
		if j.Addr != "" {
			spec.Addr, from = j.Addr, "value"
		}
		if j.Weight != nil {
			if *j.Weight < 1 || *j.Weight > tcplb.MaxWeight {
				return tcplb.BackendSpec{}, fmt.Errorf("weight %d: must be from 1 to %d", *j.Weight, tcplb.MaxWeight)
			}
			spec.Weight = *j.Weight
		}
		if j.MaxConns < 0 {
			return tcplb.BackendSpec{}, fmt.Errorf("max_conns %d: must not be negative", j.MaxConns)
		}
		spec.MaxConns = j.MaxConns
	default:
		spec.Addr, from = string(v), "value"
	}
	if err := tcplb.CheckAddr(spec.Addr); err != nil {
		return tcplb.BackendSpec{}, fmt.Errorf("address from the %s: %v", from, err)
	}
	return spec, nil
}
