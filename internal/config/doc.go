// Package config reads the tcplb configuration file.
//
// The file is YAML with four top-level keys:
//
//	listeners:                     # at least one
//	  - name: main                 # optional, defaults to the listen address
//	    listen: 127.0.0.1:8080     # host:port; empty host = all interfaces
//	    pool: app                  # optional when there is exactly one pool
//	    proxy_protocol: accept     # read PROXY headers (v1, v2): accept or optional
//	    trusted: [10.0.0.0/8]      # who may send them; required with proxy_protocol
//	    allow: [0.0.0.0/0, "::/0"] # CIDRs or addresses; optional, default all
//	    deny: [192.0.2.0/24]       # refused even if allowed; optional
//	    max_conns: 10000           # open at once; default 0: unlimited
//	    max_conns_per_source: 100  # per client address; default 0: unlimited
//	    rate_per_source: 2.5       # new connections per second; default 0: unlimited
//	    burst_per_source: 10       # with rate_per_source; default: the rate, >= 1
//	    sni_routes:                # optional: route TLS by server name, no decryption
//	      - server_name: a.example # or *.a.example (one label); any case
//	        pool: web              # required
//	    sni_fallback: pool         # no name or no match: pool (default) or close
//	pools:                         # at least one
//	  - name: app                  # required, unique
//	    strategy: round-robin      # optional, default round-robin
//	    hash_balance_factor: 125   # strategy hash only; optional, 0 (off) or >= 100
//	    all_down: fail-open        # every backend down: fail-open (default) or refuse
//	    slow_start: 30s            # ramp-up of a backend; default 0 (off); not with hash
//	    health:                    # active checks; absent or null: off; {}: defaults
//	      interval: 2s             # default 2s
//	      timeout: 1s              # default 0: the interval
//	      rise: 2                  # passed checks to be up; default 2
//	      fall: 3                  # failed checks to be down; default 3
//	      port: 9000               # default 0: the backend's port
//	      network: tcp             # tcp (default) or udp: send/expect in datagrams
//	      send: "PING\r\n"         # optional, written once connected; required for udp
//	      expect: PONG             # optional answer wanted; at most 64 KiB
//	      send_hex: 2a310d0a       # or send in hex, for binary; spaces allowed
//	      expect_hex: 2b4f4b       # or expect in hex
//	      http:                    # optional, instead of send and expect; {}: defaults
//	        path: /healthz         # default /
//	        host: app.internal     # optional Host header
//	        status: 200            # default 0: any 2xx or 3xx
//	    passive:                   # passive checks; on with these defaults
//	      max_fails: 3             # failures within fail_window to eject; 0 = off
//	      fail_window: 10s         # default 10s
//	      cooldown: 10s            # first ejection; doubles on each repeat
//	      max_cooldown: 5m         # cap of the doubling; >= cooldown
//	      max_ejection_percent: 50 # most of the pool ejected at once; 1 to 100
//	      udp_unanswered: 0        # UDP pools: a session idle after this many unanswered datagrams is a failure; 0 = off
//	    proxy_protocol: v2         # send backends a PROXY header: v1 or v2; default none
//	    discovery:                 # optional, instead of backends; one of:
//	      file: /etc/tcplb/app.txt # a file listing the backends; watched
//	      dns: _app._tcp.internal  # or a host name to resolve, with:
//	      dns_type: srv            # a (default: A and AAAA) or srv
//	      port: 5432               # required with dns_type a; not with srv
//	      interval: 30s            # re-resolve interval; default 30s, >= 1s
//	      dns_server: 10.0.0.53:53 # ip:port; default: the system's resolver
//	      etcd:                    # or keys under a prefix in etcd; watched
//	        endpoints:             # required: http:// or https:// URLs
//	          - http://etcd:2379   # with a host and a port
//	        prefix: /tcplb/app/    # required, starts with /
//	        dial_timeout: 5s       # default 5s
//	    backends:                  # at least one, unless discovery is set
//	      - addr: 127.0.0.1:3001   # required
//	        weight: 2              # 1 to 256, default 1
//	        max_conns: 100         # open at once; default 0: unlimited
//	      - 127.0.0.1:3002         # short for {addr: 127.0.0.1:3002}
//	timeouts:                      # all optional
//	  connect: 5s                  # default 5s
//	  idle: 1h                     # default 1h; 0 disables
//	  drain: 30s                   # default 30s; also for removed backends
//	  queue: 1s                    # wait when all backends are at max_conns; default 0
//	  proxy_header: 3s             # to receive a whole PROXY header; default 3s
//	  client_hello: 5s             # to receive a whole TLS ClientHello; default 5s
//	admin:                         # optional: metrics, JSON API, dashboard; absent: off
//	  listen: 127.0.0.1:9090       # default; not on loopback requires a token
//	  token: s3cret                # optional: "Authorization: Bearer s3cret" on /api/
//	  protect_metrics: false       # true: /metrics needs the token too
//
// Durations use Go syntax ("1m30s"); a bare number other than 0 is rejected
// so that "idle: 30" is not silently taken as 30 nanoseconds. In trusted,
// allow and deny, a CIDR must have no host bits set ("10.0.0.1/8" is an
// error suggesting 10.0.0.0/8) and a bare address stands for itself alone,
// a /32 or a /128. A pool's discovery takes exactly one of file, dns and
// etcd, and no backends; dns_type, port, interval and dns_server are
// errors without dns, and with it an interval of 0 means the default. A
// key given as null (~, or nothing after the colon)
// keeps its default.
//
// A health check with network udp sends send as one datagram to the
// backend (or to port) and wants a reply that starts with expect within
// timeout; without expect it waits the timeout and fails only on an ICMP
// port unreachable. It needs no port on a UDP listener's pool, whose other
// checks connect over TCP and so need a port that speaks TCP; a TCP
// listener's pool may have one too, on a port that speaks UDP. In a YAML
// double-quoted string, "\x00" to "\x7f" are single bytes, but "\x80" and
// above are characters, two bytes in UTF-8: binary payloads such as DNS
// messages go in send_hex and expect_hex.
//
// Anchors, aliases and merge keys (<<) work as in YAML;
// unknown keys, duplicate keys and values of the wrong type are errors.
//
// Parse and Load report every problem they find, not just the first, as
// errors joined with errors.Join. Each is an *Error and prints on one line
// as the place, the key path, the offending value where there is one, and
// the problem:
//
//	line 9: pools[0].backends[1].addr: "x:y": invalid port
//	line 12: timeouts.idle: "abc": invalid duration
//	listeners: at least one listener is required
//
// Load puts the file name in place of "line": "tcplb.yaml:9: ...".
package config
