package tcplb

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// This file is the health model of a pool's backends: active checks
// (probes in healthcheck.go), passive ejection, slow start, and the state
// each backend reports. Every transition happens under the pool's mu, then
// the backend's mu, and ends with a new Available snapshot (pool.go).

// State is a backend's place in its pool's health model.
type State int

// The states, in the order they take precedence: a backend that is both
// draining and down reports draining.
const (
	StateUp       State = iota // takes new connections
	StateDraining              // taken out of service by Drain or removal; open connections finish
	StateDown                  // failed its active checks
	StateEjected               // ejected by passive checks for a cooldown
)

func (s State) String() string {
	switch s {
	case StateUp:
		return "up"
	case StateDraining:
		return "draining"
	case StateDown:
		return "down"
	case StateEjected:
		return "ejected"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// BackendState is a backend's health as its pool sees it.
type BackendState struct {
	State  State
	Reason string    // why the backend is not up: the failed check, the passive failures, "drained"
	Since  time.Time // when the backend entered State
	// Ramp is the share of its weight a slow-starting backend gets now,
	// from 0.05 to 1; 1 when it is not slow-starting.
	Ramp float64
}

// State returns the backend's health state.
func (b *Backend) State() BackendState {
	b.mu.Lock()
	defer b.mu.Unlock()
	var s BackendState
	switch {
	case b.draining:
		s = BackendState{StateDraining, b.drainReason, b.drainSince, 0}
	case b.down:
		s = BackendState{StateDown, b.downReason, b.downSince, 0}
	case b.ejected:
		s = BackendState{StateEjected, b.ejectReason, b.ejectSince, 0}
	default:
		s = BackendState{StateUp, "", b.upSince, 0}
	}
	s.Ramp = 1
	if b.pool != nil {
		s.Ramp = b.ramp(time.Now(), b.pool.opts.Load().SlowStart)
	}
	return s
}

// usable reports whether b may be offered to picks.
func (b *Backend) usable() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.draining && !b.down && !b.ejected
}

// isDraining reports whether b is draining (or removed from its pool).
func (b *Backend) isDraining() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.draining
}

// cleared records that b left a non-up state.
func (b *Backend) clearedLocked(now time.Time) {
	if !b.draining && !b.down && !b.ejected {
		b.upSince = now
	}
}

// Active checks.

// startCheckLocked starts b's checker goroutine.
func (p *Pool) startCheckLocked(b *Backend, hc HealthCheck) {
	ctx, cancel := context.WithCancel(context.Background())
	p.checks[b] = cancel
	go p.runChecks(ctx, b, hc)
}

// runChecks probes b every Interval, give or take 10%, so that the checks
// of many backends spread out instead of firing together; the first check
// comes at a random point of the first interval.
func (p *Pool) runChecks(ctx context.Context, b *Backend, hc HealthCheck) {
	t := time.NewTimer(rand.N(hc.Interval) + 1)
	defer t.Stop()
	var ok, fail int // consecutive successes and failures
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := hc.probe(ctx, b.addr)
		if err == nil {
			ok, fail = ok+1, 0
		} else {
			ok, fail = 0, fail+1
		}
		p.checked(ctx, b, err, ok, fail, &hc)
		t.Reset(hc.Interval*9/10 + rand.N(hc.Interval/5+1))
	}
}

// checked applies one check result, ok and fail being the consecutive
// successes and failures so far. A backend goes down after Fall failures,
// or at its first failure if no check of it has passed yet (HAProxy's
// start-up rule), and comes up after Rise successes. Any success ends a
// passive ejection.
func (p *Pool) checked(ctx context.Context, b *Backend, err error, ok, fail int, hc *HealthCheck) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ctx.Err() != nil { // stopped while probing: the result is stale
		return
	}
	now := time.Now()
	changed := false
	b.mu.Lock()
	if err == nil {
		b.checked = true
		if b.down && ok >= hc.Rise {
			b.down = false
			b.startRampLocked(p.opts.Load())
			b.clearedLocked(now)
			changed = true
			p.logger().Info("backend up", "pool", p.name, "backend", b.addr, "check", hc.String(), "successes", ok)
		}
		if b.ejected {
			b.stopEjectLocked()
			b.lastEjectEnd = now
			b.clearedLocked(now)
			changed = true
			p.logger().Info("backend back from ejection: check passed", "pool", p.name, "backend", b.addr)
		}
	} else {
		reason := "check failed: " + err.Error()
		switch {
		case b.down:
			b.downReason = reason // the latest failure says most
		case !b.checked || fail >= hc.Fall:
			b.checked = true
			b.down, b.downReason, b.downSince = true, reason, now
			changed = true
			p.logger().Warn("backend down", "pool", p.name, "backend", b.addr, "check", hc.String(), "failures", fail, "err", err)
		}
	}
	b.mu.Unlock()
	if changed {
		p.publishLocked()
	}
}

// resetHealthLocked forgets what active checks said of b, when they are
// turned off.
func (p *Pool) resetHealthLocked(b *Backend) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.checked = false
	if b.down {
		b.down = false
		b.clearedLocked(time.Now())
	}
}

// Passive checks.

// PassiveCheck ejects a backend whose connections fail: after MaxFails
// failures (connect errors or timeouts, and connections the backend reset
// before sending its first byte) within FailWindow, the backend takes no new
// connections for Cooldown. Each further ejection doubles the cooldown, up
// to MaxCooldown; the doubling starts over once the backend has stayed in
// for MaxCooldown. A passing active check ends an ejection early.
//
// MaxEjectionPercent caps the share of the pool that may be ejected at
// once: a backend is not ejected if the ejected backends would then be
// more than that percentage of the pool (so a pool of one is never
// emptied by ejection, and at 50% a pool of three has at most one
// ejected), as Envoy's max_ejection_percent does.
//
// In a pool of UDP backends (a UDPBalancer's) the failures are a datagram
// the backend refused (an ICMP port or host unreachable) and, with
// UDPUnanswered set, a session that went idle after at least UDPUnanswered
// datagrams to the backend with no reply since the last one: a backend
// that drops datagrams silently (its host is gone, a firewall) sends no
// ICMP error, and its clients' retries are what it leaves. That failure is
// counted when the session's idle timeout ends it, so it is seen after
// UDPBalancer.IdleTimeout. Leave UDPUnanswered 0 (off) for protocols where
// a backend need not answer (syslog, one-way telemetry).
//
// A zero MaxFails turns passive checks off; zero durations and percentage
// take DefaultPassiveCheck's values.
type PassiveCheck struct {
	MaxFails           int
	FailWindow         time.Duration
	Cooldown           time.Duration
	MaxCooldown        time.Duration
	MaxEjectionPercent int
	UDPUnanswered      int
}

// DefaultPassiveCheck is the daemon's passive check.
var DefaultPassiveCheck = PassiveCheck{
	MaxFails:           3,
	FailWindow:         10 * time.Second,
	Cooldown:           10 * time.Second,
	MaxCooldown:        5 * time.Minute,
	MaxEjectionPercent: 50,
}

func (pc PassiveCheck) withDefaults() PassiveCheck {
	if pc.MaxFails <= 0 {
		return PassiveCheck{}
	}
	d := DefaultPassiveCheck
	if pc.FailWindow == 0 {
		pc.FailWindow = d.FailWindow
	}
	if pc.Cooldown == 0 {
		pc.Cooldown = d.Cooldown
	}
	if pc.MaxCooldown == 0 {
		pc.MaxCooldown = max(d.MaxCooldown, pc.Cooldown)
	}
	if pc.MaxEjectionPercent == 0 {
		pc.MaxEjectionPercent = d.MaxEjectionPercent
	}
	return pc
}

func (pc PassiveCheck) validate() error {
	switch {
	case pc.MaxFails == 0:
		return nil
	case pc.FailWindow < 0:
		return fmt.Errorf("passive check: fail window %s: must be greater than 0", pc.FailWindow)
	case pc.Cooldown < 0:
		return fmt.Errorf("passive check: cooldown %s: must be greater than 0", pc.Cooldown)
	case pc.MaxCooldown < pc.Cooldown:
		return fmt.Errorf("passive check: max cooldown %s: must be at least the cooldown (%s)", pc.MaxCooldown, pc.Cooldown)
	case pc.MaxEjectionPercent < 0 || pc.MaxEjectionPercent > 100:
		return fmt.Errorf("passive check: max ejection percent %d: must be between 1 and 100", pc.MaxEjectionPercent)
	case pc.UDPUnanswered < 0:
		return fmt.Errorf("passive check: UDP unanswered %d: must be 0 (off) or more", pc.UDPUnanswered)
	}
	return nil
}

// passiveFailure counts a failed connection against b, and ejects b when
// it has failed MaxFails times within FailWindow.
func (p *Pool) passiveFailure(b *Backend, why string) {
	pc := p.opts.Load().Passive
	if pc.MaxFails <= 0 {
		return
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	members := p.Backends()
	if p.closed || !slices.Contains(members, b) {
		return
	}
	ejected := 0
	for _, m := range members {
		m.mu.Lock()
		if m.ejected {
			ejected++
		}
		m.mu.Unlock()
	}

	if p.ejectLocked(b, pc, ejected, len(members), now, why) {
		p.publishLocked()
	}
}

// ejectLocked records the failure and reports whether b is now ejected.
func (p *Pool) ejectLocked(b *Backend, pc PassiveCheck, ejected, members int, now time.Time, why string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ejected || b.draining {
		return false
	}
	// Keep the failures within the window, at most MaxFails of them.
	cut := now.Add(-pc.FailWindow)
	keep := b.fails[:0]
	for _, t := range b.fails {
		if t.After(cut) {
			keep = append(keep, t)
		}
	}
	b.fails = append(keep, now)
	if n := len(b.fails) - pc.MaxFails; n > 0 {
		b.fails = append(b.fails[:0], b.fails[n:]...)
	}
	if len(b.fails) < pc.MaxFails {
		return false
	}
	if (ejected+1)*100 > pc.MaxEjectionPercent*members {
		if !b.ejectCapped {
			b.ejectCapped = true
			p.logger().Warn("backend failing but not ejected: max ejection percent reached", "pool", p.name, "backend", b.addr,
				"ejected", ejected, "backends", members, "max_ejection_percent", pc.MaxEjectionPercent)
		}
		return false
	}
	b.ejectCapped = false
	if !b.lastEjectEnd.IsZero() && now.Sub(b.lastEjectEnd) >= pc.MaxCooldown {
		b.ejections = 0
	}
	cooldown := pc.Cooldown
	for i := 0; i < b.ejections && cooldown < pc.MaxCooldown; i++ {
		cooldown *= 2
	}
	cooldown = min(cooldown, pc.MaxCooldown)
	b.ejections++
	b.ejected, b.ejectSince = true, now
	b.ejectReason = fmt.Sprintf("%d failures within %s, the last: %s", len(b.fails), pc.FailWindow, why)
	b.fails = b.fails[:0]
	b.ejectTimer = time.AfterFunc(cooldown, func() { p.unEject(b) })
	p.logger().Warn("backend ejected", "pool", p.name, "backend", b.addr, "cooldown", cooldown, "ejections", b.ejections, "why", b.ejectReason)
	return true
}

// unEject ends b's ejection when its cooldown has passed.
func (p *Pool) unEject(b *Backend) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b.mu.Lock()
	if !b.ejected {
		b.mu.Unlock()
		return
	}
	now := time.Now()
	b.stopEjectLocked()
	b.lastEjectEnd = now
	b.clearedLocked(now)
	b.mu.Unlock()
	p.logger().Info("backend back from ejection: cooldown over", "pool", p.name, "backend", b.addr)
	p.publishLocked()
}

// stopEjectLocked ends an ejection and its timer.
func (b *Backend) stopEjectLocked() {
	if b.ejectTimer != nil {
		b.ejectTimer.Stop()
		b.ejectTimer = nil
	}
	b.ejected = false
}

// stopDrainLocked cancels a pending forced close of b's connections.
func (b *Backend) stopDrainLocked() {
	if b.drainTimer != nil {
		b.drainTimer.Stop()
		b.drainTimer = nil
	}
}

// Slow start.

// minRamp is the share a slow-starting backend starts at.
const minRamp = 0.05

func (b *Backend) startRampLocked(o *PoolOptions) {
	if o.SlowStart > 0 {
		b.rampStart.Store(monoNanos(time.Now()))
	}
}

// ramp returns the share of its weight b gets at now during a slow start
// of length slowStart: from minRamp at the start to 1 at the end.
func (b *Backend) ramp(now time.Time, slowStart time.Duration) float64 {
	start := b.rampStart.Load()
	if start == 0 {
		return 1
	}
	elapsed := monoNanos(now) - start
	if slowStart <= 0 || elapsed >= int64(slowStart) {
		b.rampStart.CompareAndSwap(start, 0)
		return 1
	}
	return max(minRamp, float64(elapsed)/float64(slowStart))
}

// admit reports whether a pick of b may stand: always, unless b is
// slow-starting, when it stands with probability b's ramp.
func (p *Pool) admit(b *Backend) bool {
	if b.rampStart.Load() == 0 {
		return true
	}
	r := b.ramp(time.Now(), p.opts.Load().SlowStart)
	return r >= 1 || rand.Float64() < r
}
