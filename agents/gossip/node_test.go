package gossip

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drillworks/drill/topology"
)

func ips(prefix string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("%s.%d", prefix, i))
	}
	return out
}

func TestProfiles(t *testing.T) {
	for _, name := range []string{ProfileFast, ProfileLAN, ProfileWAN} {
		c, err := Profile(name)
		if err != nil || c == nil {
			t.Fatalf("Profile(%q) = %v, %v", name, c, err)
		}
		if c.ProbeTimeout >= c.ProbeInterval {
			t.Errorf("%s: ProbeTimeout %v not below ProbeInterval %v", name, c.ProbeTimeout, c.ProbeInterval)
		}
	}
	fast, _ := Profile(ProfileFast)
	if fast.ProbeInterval != 600*time.Millisecond || fast.SuspicionMult != 1 {
		t.Errorf("fast profile = interval %v, suspicion mult %d", fast.ProbeInterval, fast.SuspicionMult)
	}
	if _, err := Profile("turbo"); err == nil {
		t.Error("unknown profile accepted")
	}
}

// TestScaleFast: the fast profile keeps its timings up to SmallPoolLimit members (every built-in
// topology) and, above it, probes once a second, awaits a peer's confirmation before a death
// and retransmits less.
func TestScaleFast(t *testing.T) {
	small, _ := Profile(ProfileFast)
	scaleFast(small, SmallPoolLimit)
	fast, _ := Profile(ProfileFast)
	if small.ProbeInterval != fast.ProbeInterval || small.SuspicionMult != fast.SuspicionMult ||
		small.GossipInterval != fast.GossipInterval || small.RetransmitMult != fast.RetransmitMult ||
		small.AwarenessMaxMultiplier != fast.AwarenessMaxMultiplier {
		t.Errorf("a pool of %d members changed the fast profile", SmallPoolLimit)
	}
	big, _ := Profile(ProfileFast)
	scaleFast(big, 110)
	if big.ProbeInterval != time.Second || big.SuspicionMult-2 < 1 || big.RetransmitMult >= fast.RetransmitMult || big.ProbeTimeout >= big.ProbeInterval {
		t.Errorf("fast profile at 110 members: interval %v, timeout %v, suspicion mult %d, retransmit mult %d",
			big.ProbeInterval, big.ProbeTimeout, big.SuspicionMult, big.RetransmitMult)
	}
}

func TestStartValidates(t *testing.T) {
	base := Config{Name: "x", BindIP: testNet + ".30.1", Key: testKey}
	for name, c := range map[string]Config{
		"no name":     {BindIP: base.BindIP, Key: testKey},
		"no ip":       {Name: "x", Key: testKey},
		"short key":   {Name: "x", BindIP: base.BindIP, Key: []byte("short")},
		"bad profile": {Name: "x", BindIP: base.BindIP, Key: testKey, Profile: "turbo"},
	} {
		if n, err := Start(c, Meta{Role: "web"}); err == nil {
			_ = n.Shutdown()
			t.Errorf("%s: Start succeeded", name)
		}
	}
	if n, err := Start(base, Meta{Role: "web", Service: strings.Repeat("x", 600)}); err == nil {
		_ = n.Shutdown()
		t.Error("Start accepted meta over 512 bytes")
	}
}

func TestClusterFormsAndMetaPropagates(t *testing.T) {
	nodes := startCluster(t, ips(testNet+".10", 1, 5), nil)
	for _, n := range nodes {
		if got := n.NumAlive(); got != 5 {
			t.Fatalf("%s NumAlive = %d, want 5", n.Name(), got)
		}
		if len(n.Members()) != 5 {
			t.Fatalf("%s sees %d members", n.Name(), len(n.Members()))
		}
	}
	for _, m := range nodes[0].Members() {
		if m.Meta.Role != "web" || m.Since.IsZero() || m.Addr == "" {
			t.Fatalf("member %+v lacks meta, addr or since", m)
		}
	}

	watch, unsubscribe := nodes[4].Subscribe()
	defer unsubscribe()
	// A burst of updates coalesces; the last value must win everywhere.
	for i := 1; i <= 50; i++ {
		nodes[2].SetMeta(func(m *Meta) { m.Healthy, m.Epoch, m.LSN = true, 7, uint64(i) })
	}
	if got := nodes[2].Meta(); got.LSN != 50 || got.Epoch != 7 {
		t.Fatalf("local meta = %+v", got)
	}
	target := nodes[2].Name()
	if !waitFor(t, 5*time.Second, func() bool {
		for _, n := range nodes {
			for _, m := range n.Members() {
				if m.Name == target && (!m.Meta.Healthy || m.Meta.Epoch != 7 || m.Meta.LSN != 50) {
					return false
				}
			}
		}
		return true
	}) {
		t.Fatalf("meta update did not reach every node: %+v", nodes[4].Members())
	}
	select {
	case <-watch:
	default:
		t.Fatal("subscriber was not notified of the meta update")
	}

	if err := nodes[1].TrySetMeta(func(m *Meta) { m.Service = strings.Repeat("x", 600) }); err == nil {
		t.Fatal("meta over 512 bytes accepted")
	}
	if nodes[1].Meta().Service != "" {
		t.Fatal("rejected meta update was applied locally")
	}
}

// intruderCannotJoin starts a 2-node cluster and an intruder configured by mutate, and checks the
// intruder is kept out.
func intruderCannotJoin(t *testing.T, prefix string, mutate func(*Config)) {
	nodes := startCluster(t, ips(prefix, 1, 2), nil)
	cfg := Config{Name: prefix + ".9", BindIP: prefix + ".9", Port: testPort, Key: testKey, Label: "gossip-test",
		Seeds: []string{addr(prefix + ".1")}, Logger: testLogger(nil)}
	mutate(&cfg)
	intruder, err := Start(cfg, Meta{Role: "web"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = intruder.Shutdown() })
	if n, err := intruder.Join(addr(prefix + ".1")); err == nil {
		t.Fatalf("intruder joined %d node(s)", n)
	}
	// Give its background rejoin loop a couple of attempts as well.
	if err := holdsFor(t, 2500*time.Millisecond, func() error {
		if len(intruder.Members()) != 1 {
			return fmt.Errorf("intruder sees %d members", len(intruder.Members()))
		}
		for _, n := range nodes {
			if len(n.Members()) != 2 {
				return fmt.Errorf("%s sees %d members: %s", n.Name(), len(n.Members()), views(nodes))
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestWrongKeyCannotJoin(t *testing.T) {
	intruderCannotJoin(t, testNet+".11", func(c *Config) { c.Key = []byte("another-key-another-key-01234567") })
}

func TestWrongLabelCannotJoin(t *testing.T) {
	intruderCannotJoin(t, testNet+".12", func(c *Config) { c.Label = "another-topology" })
}

// detectionTimes waits until every observer sees name in want, and returns each observer's
// detection delay after t0 (from the member's Since).
func detectionTimes(t *testing.T, observers []*Node, name string, want State, t0 time.Time, timeout time.Duration) []time.Duration {
	t.Helper()
	if !waitFor(t, timeout, func() bool {
		for _, o := range observers {
			if st, _ := stateOf(o, name); st != want {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("not every node sees %s %s within %v: %s", name, want, timeout, views(observers))
	}
	var out []time.Duration
	for _, o := range observers {
		_, since := stateOf(o, name)
		out = append(out, since.Sub(t0))
	}
	return out
}

func maxDuration(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// Detection bounds for the fast profile. Detection = wait for the first probe of the victim
// (memberlist picks probe targets in random order: roughly exponential with a mean of one probe
// interval, so it has a tail no tuning removes) + the tuned part, from the start of that probe to
// every survivor marking the victim dead: probe interval 0.6 s + suspicion 0.6 s + gossip.
// Memberlist logs the suspicion at the end of the failed probe, so "after suspicion" is
// suspicion timeout + gossip.
const (
	// 0.6 s suspicion + gossip (a cross-region hop adds up to FastMaxOneWay), with generous
	// slack for a busy 2-core box.
	maxAfterSuspicion = 2600 * time.Millisecond
	maxTotalDetection = 9 * time.Second // tuned 1.3 s + an improbably slow first probe
)

// checkDetection waits until every survivor sees victim dead, logs the timings and checks them
// against the bounds; it returns the total detection time.
func checkDetection(t *testing.T, what string, rec *suspicions, survivors []*Node, victim string, t0 time.Time) time.Duration {
	t.Helper()
	ds := detectionTimes(t, survivors, victim, StateDead, t0, maxTotalDetection)
	total := maxDuration(ds)
	suspected, ok := rec.First(victim)
	if !ok {
		t.Fatalf("%s: %s declared dead without a suspicion logged", what, victim)
	}
	toSuspicion, afterSuspicion := suspected.Sub(t0), total-suspected.Sub(t0)
	t.Logf("%s: dead at all %d survivors after %v (first suspicion after %v, then %v)", what, len(survivors),
		total.Round(time.Millisecond), toSuspicion.Round(time.Millisecond), afterSuspicion.Round(time.Millisecond))
	if afterSuspicion > maxAfterSuspicion {
		t.Errorf("%s: %v from first suspicion to dead everywhere, want ≤ %v", what, afterSuspicion, maxAfterSuspicion)
	}
	return total
}

func TestKillDetectedRestartAndLeave(t *testing.T) {
	rec := newSuspicions()
	nodes := startCluster(t, ips(testNet+".13", 1, 10), func(c *Config) { c.Logger = testLogger(rec) })

	// Kill three nodes one after another (10 → 9 → 8 → 7 alive).
	var totals []time.Duration
	for k := range 3 {
		victim, survivors := nodes[9-k], nodes[:9-k]
		t0 := time.Now()
		if err := victim.Shutdown(); err != nil {
			t.Fatal(err)
		}
		totals = append(totals, checkDetection(t, fmt.Sprintf("kill %d (%d nodes)", k+1, 10-k), rec, survivors, victim.Name(), t0))
	}
	t.Logf("kill detection, fast profile: %v", rounded(totals))

	// A killed node restarted under the same name and address is alive again everywhere.
	old := nodes[9]
	restarted, err := Start(old.cfg, Meta{Role: "web", Healthy: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = restarted.Shutdown() })
	live := append(append([]*Node{}, nodes[:7]...), restarted)
	t0 := time.Now()
	if !waitFor(t, 5*time.Second, func() bool { return allSeeAlive(live, live) }) {
		t.Fatalf("restarted node not alive everywhere: %s", views(live))
	}
	t.Logf("restart at the same address: alive everywhere after %v", time.Since(t0).Round(time.Millisecond))
	if m := memberOf(nodes[0], restarted.Name()); !m.Meta.Healthy || time.Since(m.Since) > 6*time.Second {
		t.Fatalf("restarted member seen as %+v, want fresh meta and a recent Since", m)
	}

	leaver, rest := nodes[6], append(append([]*Node{}, nodes[:6]...), restarted)
	t0 = time.Now()
	// Leave waits a bounded time for its broadcasts to go out; on a loaded machine (the race
	// tier in CI) that wait can run out while the notice still spreads. What is judged is below:
	// every survivor reports the member left, never dead.
	if err := leaver.Leave(5 * time.Second); err != nil {
		t.Logf("leave (judged by what the others report): %v", err)
	}
	_ = leaver.Shutdown()
	ds := detectionTimes(t, rest, leaver.Name(), StateLeft, t0, 5*time.Second)
	t.Logf("graceful leave: reported left by all %d after %v", len(rest), maxDuration(ds).Round(time.Millisecond))
	// It must stay "left", never turn "dead", after the fact.
	if err := holdsFor(t, 500*time.Millisecond, func() error {
		for _, o := range rest {
			if st, _ := stateOf(o, leaver.Name()); st != StateLeft {
				return fmt.Errorf("%s sees the leaver as %s", o.Name(), st)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := rest[0].NumAlive(); got != 7 {
		t.Fatalf("NumAlive = %d after 3 kills, a restart and a leave, want 7", got)
	}
}

func TestPartitionAndHeal(t *testing.T) {
	rec := newSuspicions()
	sideA, sideB := ips(testNet+".1", 1, 2), ips(testNet+".2", 1, 2)
	nodes := startCluster(t, append(append([]string{}, sideA...), sideB...), func(c *Config) { c.Logger = testLogger(rec) })
	a, b := nodes[:2], nodes[2:]
	netA, netB := netip.MustParsePrefix(testNet+".1.0/24"), netip.MustParsePrefix(testNet+".2.0/24")
	sameSide := func(x, y *Node) bool { return x.Name()[:len(testNet+".1.")] == y.Name()[:len(testNet+".1.")] }

	t0 := time.Now()
	for _, n := range a {
		n.Faults().Set(Rules{Drop: []netip.Prefix{netB}})
	}
	for _, n := range b {
		n.Faults().Set(Rules{Drop: []netip.Prefix{netA}})
	}
	var worst time.Duration
	for _, victim := range nodes {
		other := b
		if !sameSide(victim, a[0]) {
			other = a
		}
		worst = max(worst, checkDetection(t, "partition 2|2, "+victim.Name(), rec, other, victim.Name(), t0))
	}
	t.Logf("partition 2|2: every node declared the other side dead after %v", worst.Round(time.Millisecond))
	// Hold the partition past GossipToTheDeadTime (5 s), after which memberlist stops talking to
	// dead nodes: from then on only the rejoin loop can re-form the cluster. Each side must keep
	// its own members alive and the other side dead throughout (no flapping).
	if err := holdsFor(t, 6*time.Second, func() error {
		for _, o := range nodes {
			for _, tg := range nodes {
				st, _ := stateOf(o, tg.Name())
				if same := sameSide(o, tg); (same && st != StateAlive) || (!same && st != StateDead) {
					return fmt.Errorf("%s sees %s %s during the partition", o.Name(), tg.Name(), st)
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("%v: %s", err, views(nodes))
	}

	t1 := time.Now()
	for _, n := range nodes {
		n.Faults().Clear()
	}
	if !waitFor(t, 15*time.Second, func() bool { return allSeeAlive(nodes, nodes) }) {
		t.Fatalf("cluster did not re-form within 15s of healing: %s", views(nodes))
	}
	t.Logf("heal: all 4 nodes alive everywhere again after %v (rejoin interval %v)",
		time.Since(t1).Round(time.Millisecond), DefaultRejoinInterval)
}

func TestWANLatencyNoFalseDeathsThenKillDetected(t *testing.T) {
	rec := newSuspicions()
	sideA, sideB := ips(testNet+".1", 11, 14), ips(testNet+".2", 11, 14)
	nodes := startCluster(t, append(append([]string{}, sideA...), sideB...), func(c *Config) { c.Logger = testLogger(rec) })
	a, b := nodes[:4], nodes[4:]
	netA, netB := netip.MustParsePrefix(testNet+".1.0/24"), netip.MustParsePrefix(testNet+".2.0/24")
	// The worst WAN the fast profile is meant for: FastMaxOneWay with the jitter included.
	const jitter = 25 * time.Millisecond
	const oneWay = FastMaxOneWay - jitter
	for _, n := range a {
		n.Faults().Set(Rules{Delays: []Delay{{Prefix: netB, Latency: oneWay, Jitter: jitter}}})
	}
	for _, n := range b {
		n.Faults().Set(Rules{Delays: []Delay{{Prefix: netA, Latency: oneWay, Jitter: jitter}}})
	}
	rec.Reset()

	// Watch every node through its subscription (each change is checked at once) and by polling:
	// nobody may stop being alive.
	var violation atomic.Pointer[string]
	check := func(n *Node) error {
		for _, m := range n.Members() {
			if m.State != StateAlive {
				return fmt.Errorf("%s sees %s %s under WAN latency", n.Name(), m.Name, m.State)
			}
		}
		return nil
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	for _, n := range nodes {
		ch, unsubscribe := n.Subscribe()
		t.Cleanup(unsubscribe)
		go func() {
			for {
				select {
				case <-ch:
					if err := check(n); err != nil {
						msg := err.Error()
						violation.CompareAndSwap(nil, &msg)
					}
				case <-done:
					return
				}
			}
		}()
	}
	var maxRTT time.Duration
	window := 8 * time.Second
	if err := holdsFor(t, window, func() error {
		if v := violation.Load(); v != nil {
			return fmt.Errorf("subscriber saw: %s", *v)
		}
		for _, n := range nodes {
			if err := check(n); err != nil {
				return err
			}
		}
		if rtt, ok := a[0].RTT(b[0].Name()); ok {
			maxRTT = max(maxRTT, rtt)
		}
		return nil
	}); err != nil {
		t.Fatalf("%v: %s", err, views(nodes))
	}
	if maxRTT < 2*(oneWay-jitter) { // jitter applies in each direction
		t.Fatalf("largest probe RTT %s→%s was %v; the injected %v one-way delay is not in effect", a[0].Name(), b[0].Name(), maxRTT, oneWay)
	}
	t.Logf("8 nodes, %v±%v one-way between regions for %v: nobody left alive anywhere; max probe RTT seen %v; suspicions raised: %d (none became a death)",
		oneWay, jitter, window, maxRTT.Round(time.Millisecond), rec.Count())

	victim, survivors := b[3], append(append([]*Node{}, a...), b[:3]...)
	rec.Reset()
	t0 := time.Now()
	if err := victim.Shutdown(); err != nil {
		t.Fatal(err)
	}
	checkDetection(t, "kill under WAN latency (8 nodes)", rec, survivors, victim.Name(), t0)
}

// memberOf is name as o sees it.
func memberOf(o *Node, name string) Member {
	for _, m := range o.Members() {
		if m.Name == name {
			return m
		}
	}
	return Member{}
}

func minDuration(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = min(m, d)
	}
	return m
}

func rounded(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(10 * time.Millisecond)
	}
	return out
}

// TestFastMaxOneWayMatchesTopology keeps the tolerance the topology validates against equal to
// the one the fast profile is tuned for.
func TestFastMaxOneWayMatchesTopology(t *testing.T) {
	if FastMaxOneWay != topology.FastGossipMaxOneWay {
		t.Fatalf("gossip.FastMaxOneWay %v != topology.FastGossipMaxOneWay %v", FastMaxOneWay, topology.FastGossipMaxOneWay)
	}
}

// TestCheckRefusesMembers: a member that holds the key but that Check refuses (not in the plan)
// is left out of Members on the node checking; a forged "leaving" notice for a member that stays
// does not make it count as left.
func TestCheckRefusesMembers(t *testing.T) {
	ips := ips(testNet+".14", 1, 3)
	intruder := ips[2]
	var refusals atomic.Int64
	check := func(m Member) error {
		if m.Name == intruder {
			refusals.Add(1)
			return errors.New("not in the plan")
		}
		return nil
	}
	nodes := startCluster(t, ips[:2], func(c *Config) { c.Check = check })
	in, err := Start(Config{Name: intruder, BindIP: intruder, Port: testPort, Profile: ProfileFast, Key: testKey,
		Label: "gossip-test", Seeds: []string{addr(ips[0])}, Logger: testLogger(nil)}, Meta{Role: "db", Primary: true, Epoch: 1 << 62})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Shutdown() })
	if !waitFor(t, 10*time.Second, func() bool {
		_ = nodes[0].Members() // Check runs as members are listed
		return allSeeAlive([]*Node{in}, nodes) && refusals.Load() > 0
	}) {
		t.Fatalf("the intruder did not join: %s", views(append(nodes, in)))
	}
	for _, n := range nodes {
		for _, m := range n.Members() {
			if m.Name == intruder {
				t.Fatalf("%s lists the refused member %s", n.Name(), intruder)
			}
		}
	}
	// A notice forged for ips[1] (who stays) is void after its TTL: were it to die later it
	// counts as dead, not left.
	d := &delegate{n: nodes[0]}
	d.NotifyMsg([]byte(leavingMsgPrefix + ips[1]))
	nodes[0].mu.Lock()
	nodes[0].members[ips[1]].leavingAt = time.Now().Add(-2 * leavingNoticeTTL)
	nodes[0].mu.Unlock()
	_ = nodes[1].Shutdown()
	if !waitFor(t, 10*time.Second, func() bool {
		for _, m := range nodes[0].Members() {
			if m.Name == ips[1] {
				return m.State == StateDead
			}
		}
		return false
	}) {
		t.Fatalf("after a stale forged leaving notice, %s's death shows as %v", ips[1], nodes[0].Members())
	}
}
