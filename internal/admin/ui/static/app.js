// tcplb dashboard. Polls GET api/v1/pools once a second and updates the page
// in place: every pool card and every backend row is created once, keyed by
// pool and address, and later polls only change the text that changed, so
// hover, focus and text selection survive. No framework, no external files.
'use strict';

(() => {
  const POLL_MS = 1000;        // one poll a second
  const TIMEOUT_MS = 5000;     // a poll that takes longer counts as failed
  const HISTORY = 60;          // sparkline samples
  const SPARK_W = 120, SPARK_H = 22;
  const TOKEN_KEY = 'tcplb.admin.token';
  const API = 'api/v1/';       // relative: works behind a path prefix too
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);
  const statusEl = $('status');
  const statusText = statusEl.querySelector('[data-field="status"]');
  const statusDetail = statusEl.querySelector('[data-field="status-detail"]');
  const updatedEl = $('updated');
  const listenersEl = $('listeners');
  const poolsEl = $('pools');
  const emptyEl = $('empty');
  const tokenForm = $('token-form');
  const tokenInput = $('token');
  const tokenMessage = $('token-message');
  const poolTemplate = $('pool-template').content.firstElementChild;
  const rowTemplate = $('row-template').content.firstElementChild;

  const intFmt = new Intl.NumberFormat('en-US');

  let token = '';
  try { token = sessionStorage.getItem(TOKEN_KEY) || ''; } catch (_) { /* storage disabled */ }

  let timer = 0;          // pending setTimeout of the next poll
  let inflight = false;   // a poll is running
  let again = false;      // poll again as soon as the running one ends
  let locked = false;     // the API wants a (new) token; polling is stopped
  let lastUpdate = null;  // Date of the last good poll (server time)
  let lastUpdateLocal = 0;
  let pollStarted = 0;    // performance.now() when the current poll was sent

  const cards = new Map();      // pool name -> card
  const rows = new Map();       // pool + '\n' + addr -> row
  const listeners = new Map();  // listener name -> chip

  // ---- small helpers -------------------------------------------------------

  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }

  function setAttr(el, name, value) {
    if (el.getAttribute(name) !== value) el.setAttribute(name, value);
  }

  // parseTime parses RFC 3339 with any number of fractional digits (Go sends
  // nanoseconds) and returns milliseconds, or NaN.
  function parseTime(s) {
    if (typeof s !== 'string') return NaN;
    return Date.parse(s.replace(/(\.\d{3})\d+/, '$1'));
  }

  function clock(ms) {
    const d = new Date(ms);
    const p = (n) => String(n).padStart(2, '0');
    return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }

  function ago(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) return `${seconds}s`;
    const m = Math.floor(seconds / 60);
    if (m < 60) return `${m}m`;
    const h = Math.floor(m / 60);
    if (h < 48) return `${h}h ${m % 60}m`;
    return `${Math.floor(h / 24)}d`;
  }

  function fmtRate(v) {
    if (v === null) return '–';
    if (v === 0) return '0';
    if (v < 10) return v.toFixed(1);
    return intFmt.format(Math.round(v));
  }

  function fmtBytes(v) {
    if (v === null) return '–';
    const units = ['B/s', 'KB/s', 'MB/s', 'GB/s', 'TB/s'];
    let i = 0;
    while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
    const n = i === 0 ? String(Math.round(v)) : v < 100 ? v.toFixed(1) : String(Math.round(v));
    return `${n} ${units[i]}`;
  }

  function rejectedTotal(r) {
    if (!r) return 0;
    return Object.values(r).reduce((a, b) => a + (Number(b) || 0), 0);
  }

  // ---- API -----------------------------------------------------------------

  class APIError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function request(method, path) {
    const headers = { 'Accept': 'application/json' };
    if (token) headers['Authorization'] = 'Bearer ' + token;
    let res;
    try {
      res = await fetch(API + path, {
        method, headers, cache: 'no-store', credentials: 'same-origin',
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (e) {
      const msg = e && e.name === 'TimeoutError' ? `no answer in ${TIMEOUT_MS / 1000}s` : 'cannot reach the admin API';
      throw new APIError(0, msg);
    }
    let body = null;
    try { body = await res.json(); } catch (_) { /* not JSON */ }
    if (!res.ok) {
      const msg = body && typeof body.error === 'string' && body.error ? body.error : `HTTP ${res.status} ${res.statusText}`.trim();
      throw new APIError(res.status, msg);
    }
    if (body === null) throw new APIError(res.status, 'the answer is not JSON');
    return body;
  }

  // ---- polling -------------------------------------------------------------

  function kick() {
    if (inflight) { again = true; return; }
    poll();
  }

  async function poll() {
    clearTimeout(timer);
    if (locked) return;
    inflight = true;
    const started = performance.now();
    pollStarted = started;
    try {
      const data = await request('GET', 'pools');
      if (!locked) {
        render(data);
        setLive(data.time);
      }
    } catch (e) {
      if (e.status === 401) lock();
      else setStale(e.message);
    } finally {
      inflight = false;
    }
    if (locked) return;
    const wait = again ? 0 : Math.max(0, POLL_MS - (performance.now() - started));
    again = false;
    timer = setTimeout(poll, wait);
  }

  function setStatus(state, text, detail) {
    setAttr(statusEl, 'data-state', state);
    setText(statusText, text);
    setText(statusDetail, detail || '');
    setAttr(statusEl, 'title', detail || text);
    document.body.classList.toggle('is-stale', state === 'stale');
    document.title = state === 'live' ? 'tcplb' : `tcplb (${text})`;
  }

  function setLive(time) {
    let ms = parseTime(time);
    if (Number.isNaN(ms)) ms = Date.now();
    lastUpdate = ms;
    lastUpdateLocal = Date.now();
    setText(updatedEl, clock(ms));
    setAttr(updatedEl, 'datetime', new Date(ms).toISOString());
    setStatus('live', 'live', '');
  }

  function setStale(message) {
    const age = lastUpdate === null ? '' : ` · last update ${ago((Date.now() - lastUpdateLocal) / 1000)} ago`;
    setStatus('stale', 'stale', message + age);
  }

  // ---- token ---------------------------------------------------------------

  function lock() {
    const wasLocked = locked;
    locked = true;
    clearTimeout(timer);
    tokenMessage.textContent = token
      ? 'The admin API did not accept the token. Enter the current one.'
      : 'This admin API needs a bearer token. It is kept in this tab only (sessionStorage).';
    tokenForm.hidden = false;
    setStatus('auth', 'token needed', token ? 'token rejected' : '');
    document.body.classList.add('is-locked');
    if (!wasLocked) tokenInput.focus();
  }

  tokenForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    token = tokenInput.value.trim();
    tokenInput.value = '';
    try {
      if (token) sessionStorage.setItem(TOKEN_KEY, token);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (_) { /* storage disabled: keep it in memory */ }
    locked = false;
    tokenForm.hidden = true;
    document.body.classList.remove('is-locked');
    setStatus('connecting', 'connecting', '');
    kick();
  });

  // ---- listeners -----------------------------------------------------------

  function renderListeners(list) {
    const seen = new Set();
    let prev = null;
    for (const l of list) {
      seen.add(l.name);
      let chip = listeners.get(l.name);
      if (!chip) {
        const li = document.createElement('li');
        li.className = 'listener';
        li.dataset.listener = l.name;
        // A UDP listener's counts are sessions (open, opened) and dropped
        // datagrams; a TCP one's are connections.
        const udp = l.protocol === 'udp';
        li.dataset.protocol = udp ? 'udp' : 'tcp';
        li.innerHTML = '<span class="l-name"></span>' + (udp ? '<span class="l-proto">udp</span>' : '') +
          '<span class="l-pool"></span>' +
          '<span class="l-stat"><b data-field="active"></b> ' + (udp ? 'sessions' : 'active') + '</span>' +
          '<span class="l-stat"><b data-field="accepted"></b> ' + (udp ? 'opened' : 'accepted') + '</span>' +
          (udp ? '<span class="l-stat"><b data-field="datagrams"></b> datagrams</span>' : '') +
          '<span class="l-stat l-rej"><b data-field="rejected"></b> ' + (udp ? 'dropped' : 'rejected') + '</span>';
        chip = {
          li,
          name: li.querySelector('.l-name'),
          pool: li.querySelector('.l-pool'),
          active: li.querySelector('[data-field="active"]'),
          accepted: li.querySelector('[data-field="accepted"]'),
          rejected: li.querySelector('[data-field="rejected"]'),
          datagrams: li.querySelector('[data-field="datagrams"]'),
          rej: li.querySelector('.l-rej'),
          lastRejected: null,
          rejectedAt: 0,
        };
        listeners.set(l.name, chip);
      }
      place(listenersEl, chip.li, prev);
      prev = chip.li;
      setText(chip.name, l.name);
      setText(chip.pool, '→ ' + l.pool);
      setText(chip.active, intFmt.format(l.active || 0));
      setText(chip.accepted, intFmt.format(l.accepted || 0));
      if (chip.datagrams) setText(chip.datagrams, intFmt.format((l.datagrams_in || 0) + (l.datagrams_out || 0)));
      const rej = rejectedTotal(l.rejected);
      setText(chip.rejected, intFmt.format(rej));
      if (chip.lastRejected !== null && rej > chip.lastRejected) chip.rejectedAt = Date.now();
      chip.lastRejected = rej;
      // Colour the count only while rejections are recent, not for ever.
      chip.rej.classList.toggle('recent', Date.now() - chip.rejectedAt < 60000);
      const parts = Object.entries(l.rejected || {}).map(([k, v]) => `${k.replace(/_/g, ' ')}: ${v}`);
      const what = chip.datagrams ? 'dropped datagrams' : 'rejected';
      setAttr(chip.rej, 'title', parts.length ? what + ' — ' + parts.join(', ') : what);
    }
    for (const [name, chip] of listeners) {
      if (!seen.has(name)) { chip.li.remove(); listeners.delete(name); }
    }
  }

  // place puts el right after prev (or first) in parent, moving it only when
  // it is not there already, so a stable list never touches the DOM.
  function place(parent, el, prev) {
    const want = prev ? prev.nextSibling : parent.firstChild;
    if (want !== el) parent.insertBefore(el, want);
  }

  // ---- pools ---------------------------------------------------------------

  function render(data) {
    const now = parseTime(data.time);
    const t = Number.isNaN(now) ? Date.now() : now;
    renderListeners(Array.isArray(data.listeners) ? data.listeners : []);

    const pools = Array.isArray(data.pools) ? data.pools : [];
    const seenPools = new Set(), seenRows = new Set();
    let prev = null;
    for (const p of pools) {
      seenPools.add(p.name);
      let card = cards.get(p.name);
      if (!card) { card = createCard(p.name); cards.set(p.name, card); }
      place(poolsEl, card.el, prev);
      prev = card.el;
      updateCard(card, p, t, seenRows);
    }
    for (const [name, card] of cards) {
      if (!seenPools.has(name)) { card.el.remove(); cards.delete(name); }
    }
    for (const [key, row] of rows) {
      if (!seenRows.has(key)) { row.tr.remove(); rows.delete(key); }
    }
    emptyEl.hidden = pools.length > 0;
    if (pools.length === 0) setText(emptyEl, 'No pools are configured.');
  }

  function createCard(name) {
    const el = poolTemplate.cloneNode(true);
    el.dataset.pool = name;
    const f = (n) => el.querySelector(`[data-field="${n}"]`);
    const card = {
      el,
      name: f('name'), strategy: f('strategy'), available: f('available'), totals: f('totals'),
      tbody: el.querySelector('tbody'),
      none: null,
    };
    setText(card.name, name);
    el.setAttribute('aria-label', 'pool ' + name);
    return card;
  }

  function updateCard(card, p, t, seenRows) {
    const backends = Array.isArray(p.backends) ? p.backends : [];
    setText(card.strategy, p.strategy || '');
    const avail = Number(p.available) || 0;
    setText(card.available, `${avail} of ${backends.length} available`);
    setAttr(card.available, 'data-health',
      backends.length === 0 || avail === 0 ? 'bad' : avail < backends.length ? 'warn' : 'ok');

    // A pool that UDP listeners serve has its backends' datagram counts:
    // its connections are sessions.
    let prev = null, active = 0, rate = 0, bin = 0, bout = 0, dg = 0, haveRate = false, udp = false;
    for (const b of backends) {
      const key = p.name + '\n' + b.addr;
      seenRows.add(key);
      let row = rows.get(key);
      if (!row) { row = createRow(p.name, b.addr); rows.set(key, row); }
      place(card.tbody, row.tr, prev);
      prev = row.tr;
      updateRow(row, b, t);
      active += Number(b.active) || 0;
      if (row.rate !== null) { haveRate = true; rate += row.rate; bin += row.bin; bout += row.bout; dg += row.dg || 0; }
      udp = udp || row.udp;
    }
    if (backends.length === 0) {
      if (!card.none) {
        card.none = document.createElement('tr');
        card.none.className = 'none';
        card.none.innerHTML = '<td colspan="9">No backends in this pool.</td>';
      }
      if (card.none.parentNode !== card.tbody) card.tbody.appendChild(card.none);
    } else if (card.none && card.none.parentNode) {
      card.none.remove();
    }
    let totals;
    if (udp) {
      totals = haveRate
        ? `${intFmt.format(active)} sessions · ${fmtRate(rate)} sessions/s · ${fmtRate(dg)} datagrams/s · in ${fmtBytes(bin)} · out ${fmtBytes(bout)}`
        : `${intFmt.format(active)} sessions`;
    } else {
      totals = haveRate
        ? `${intFmt.format(active)} active · ${fmtRate(rate)} conn/s · in ${fmtBytes(bin)} · out ${fmtBytes(bout)}`
        : `${intFmt.format(active)} active`;
    }
    setText(card.totals, totals);
  }

  // ---- backend rows --------------------------------------------------------

  function createRow(pool, addr) {
    const tr = rowTemplate.cloneNode(true);
    tr.dataset.pool = pool;
    tr.dataset.addr = addr;
    const f = (n) => tr.querySelector(`[data-field="${n}"]`);
    const stateCell = f('state');
    const row = {
      tr, pool, addr,
      addrCell: f('addr'),
      stateCell,
      badge: stateCell.querySelector('.badge'),
      detail: stateCell.querySelector('.detail'),
      weight: f('weight'), active: f('active'), rateCell: f('rate'), inCell: f('in'), outCell: f('out'),
      button: tr.querySelector('button'),
      err: f('error'),
      state: '',
      pending: false,
      actedAt: 0,             // performance.now() of the last drain/enable answer
      prev: null,             // {t, total, bin, bout} of the last poll
      rate: null, bin: null, bout: null,
      udp: false, dg: null,   // a UDP pool's backend; its datagrams per second, both ways
      history: [],
      spark: makeSpark(f('spark')),
    };
    setText(row.addrCell, addr);
    row.addrCell.title = addr;
    row.button.addEventListener('click', () => act(row));
    return row;
  }

  function updateRow(row, b, t) {
    // A poll sent before a drain or enable was answered would show the old
    // state for a second; the answer is newer, so keep it.
    if (pollStarted >= row.actedAt) applyState(row, b);
    setText(row.weight, String(b.weight ?? ''));
    const active = intFmt.format(Number(b.active) || 0);
    setText(row.active, b.max_conns > 0 ? `${active} / ${intFmt.format(b.max_conns)}` : active);
    row.active.classList.toggle('full', b.max_conns > 0 && b.active >= b.max_conns);
    row.active.classList.toggle('zero', !(Number(b.active) > 0));

    // Rates from the deltas between two polls, timed by the server's clock.
    row.udp = b.datagrams_in !== undefined;
    const cur = {
      t, total: Number(b.total) || 0, bin: Number(b.bytes_in) || 0, bout: Number(b.bytes_out) || 0,
      dg: (Number(b.datagrams_in) || 0) + (Number(b.datagrams_out) || 0),
    };
    const prev = row.prev;
    if (prev && cur.t > prev.t) {
      const dt = (cur.t - prev.t) / 1000;
      if (cur.total >= prev.total && cur.bin >= prev.bin && cur.bout >= prev.bout && cur.dg >= prev.dg) {
        row.rate = (cur.total - prev.total) / dt;
        row.dg = (cur.dg - prev.dg) / dt;
        row.bin = (cur.bin - prev.bin) / dt;
        row.bout = (cur.bout - prev.bout) / dt;
        row.history.push(row.rate);
        if (row.history.length > HISTORY) row.history.shift();
      } else {
        // Counters went back: the backend or the daemon restarted.
        row.rate = row.bin = row.bout = row.dg = null;
      }
      row.prev = cur;
    } else if (!prev) {
      row.prev = cur;
    }
    setText(row.rateCell, fmtRate(row.rate));
    setText(row.inCell, fmtBytes(row.bin));
    setText(row.outCell, fmtBytes(row.bout));
    // Zeros and unknowns fade, so the numbers that matter stand out.
    row.rateCell.classList.toggle('zero', !row.rate);
    row.inCell.classList.toggle('zero', !row.bin);
    row.outCell.classList.toggle('zero', !row.bout);
    drawSpark(row.spark, row.history);
    const errs = Number(b.connect_errors) || 0;
    setAttr(row.rateCell, 'title', row.udp
      ? `${intFmt.format(Number(b.total) || 0)} sessions in total, ${intFmt.format(Number(b.datagrams_out) || 0)} datagrams to the backend, ${intFmt.format(Number(b.datagrams_in) || 0)} from it`
      : `${intFmt.format(Number(b.total) || 0)} connections in total, ${intFmt.format(errs)} connect errors`);
  }

  // applyState shows the state of a backend object (from a poll or from the
  // answer to a drain or enable).
  function applyState(row, b) {
    const state = String(b.state || 'unknown');
    row.state = state;
    setText(row.badge, state);
    setAttr(row.badge, 'data-state', state);
    setAttr(row.tr, 'data-state', state);

    const parts = [];
    const ramp = Number(b.ramp);
    if (state === 'up' && b.ramp !== undefined && ramp < 1) parts.push(`warming ${Math.floor(Math.max(0, ramp) * 100)}%`);
    if (b.reason) parts.push(b.reason);
    const since = parseTime(b.since);
    const hasSince = since > 0; // NaN and Go's zero time are not times
    if (hasSince) parts.push('for ' + ago((Date.now() - since) / 1000));
    setText(row.detail, parts.join(' · '));
    row.detail.classList.toggle('warming', parts.length > 0 && parts[0].startsWith('warming'));

    let title = state;
    if (b.reason) title += ' — ' + b.reason;
    if (hasSince) title += ` (since ${new Date(since).toLocaleString()})`;
    setAttr(row.stateCell, 'title', title);

    if (!row.pending) setButton(row);
  }

  function setButton(row) {
    const action = row.state === 'draining' ? 'enable' : 'drain';
    setAttr(row.button, 'data-action', action);
    setText(row.button, action === 'drain' ? 'Drain' : 'Enable');
    setAttr(row.button, 'aria-label', `${action === 'drain' ? 'Drain' : 'Enable'} ${row.addr} in pool ${row.pool}`);
    setAttr(row.button, 'title', action === 'drain'
      ? 'Stop sending new connections to this backend; open ones finish'
      : 'Send new connections to this backend again');
  }

  async function act(row) {
    if (row.pending) return;
    const action = row.button.dataset.action;
    row.pending = true;
    row.button.disabled = true;
    row.tr.classList.add('pending');
    setText(row.err, '');
    row.err.removeAttribute('title');
    try {
      const path = `pools/${encodeURIComponent(row.pool)}/backends/${encodeURIComponent(row.addr)}/${action}`;
      const b = await request('POST', path);
      row.pending = false;
      row.actedAt = performance.now();
      applyState(row, b);
    } catch (e) {
      row.pending = false;
      const msg = `${action} failed: ${e.message}`;
      setText(row.err, msg);
      row.err.title = msg;
      if (e.status === 401) lock();
    } finally {
      row.pending = false;
      row.button.disabled = false;
      row.tr.classList.remove('pending');
      setButton(row);
    }
  }

  // ---- sparkline -----------------------------------------------------------

  function makeSpark(cell) {
    const svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('width', SPARK_W);
    svg.setAttribute('height', SPARK_H);
    svg.setAttribute('viewBox', `0 0 ${SPARK_W} ${SPARK_H}`);
    svg.setAttribute('role', 'img');
    svg.setAttribute('class', 'sparkline');
    const base = document.createElementNS(SVG_NS, 'line');
    base.setAttribute('class', 'base');
    base.setAttribute('x1', 0); base.setAttribute('x2', SPARK_W);
    base.setAttribute('y1', SPARK_H - 0.5); base.setAttribute('y2', SPARK_H - 0.5);
    const area = document.createElementNS(SVG_NS, 'path');
    area.setAttribute('class', 'area');
    const line = document.createElementNS(SVG_NS, 'polyline');
    line.setAttribute('class', 'line');
    svg.append(base, area, line);
    cell.appendChild(svg);
    return { svg, area, line };
  }

  function drawSpark(s, h) {
    const peak = h.reduce((a, b) => Math.max(a, b), 0);
    setAttr(s.svg, 'aria-label', h.length
      ? `connections per second, last ${h.length} samples, peak ${fmtRate(peak)}`
      : 'no samples yet');
    setAttr(s.svg, 'data-samples', String(h.length));
    if (h.length === 0) { s.line.setAttribute('points', ''); s.area.setAttribute('d', ''); return; }
    const max = Math.max(peak, 1);
    const step = SPARK_W / (HISTORY - 1);
    const top = 2, bottom = SPARK_H - 1;
    const pts = h.map((v, i) => {
      const x = SPARK_W - (h.length - 1 - i) * step;
      const y = bottom - (v / max) * (bottom - top);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
    s.line.setAttribute('points', pts.join(' '));
    const firstX = (SPARK_W - (h.length - 1) * step).toFixed(1);
    s.area.setAttribute('d', `M${firstX},${bottom} L${pts.join(' L')} L${SPARK_W},${bottom} Z`);
  }

  // ---- start ---------------------------------------------------------------

  // Keep "for 5m" and "last update 12s ago" honest while polls fail.
  setInterval(() => {
    if (statusEl.dataset.state === 'stale' && lastUpdate !== null) {
      const d = statusDetail.textContent.replace(/ · last update .* ago$/, '');
      setText(statusDetail, `${d} · last update ${ago((Date.now() - lastUpdateLocal) / 1000)} ago`);
    }
  }, 1000);

  poll();
})();
