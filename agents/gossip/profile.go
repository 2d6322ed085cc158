package gossip

import (
	"fmt"
	"time"

	"github.com/hashicorp/memberlist"
)

// Profile names.
const (
	// ProfileFast is the drill default: detect death in ~1.5–3 s, tolerate a WAN of up to
	// FastMaxOneWay one-way.
	ProfileFast = "fast"
	// ProfileLAN is memberlist.DefaultLANConfig.
	ProfileLAN = "lan"
	// ProfileWAN is memberlist.DefaultWANConfig.
	ProfileWAN = "wan"
)

// FastMaxOneWay is the largest one-way cross-region latency (jitter included) the fast profile
// tolerates without false suspicions; topology validation uses the same number.
const FastMaxOneWay = 225 * time.Millisecond

// Profile returns a fresh memberlist config with the named timing preset: "fast", "lan" or
// "wan". Identity, addresses, transport, keys and delegates are left for the caller to set.
func Profile(name string) (*memberlist.Config, error) {
	switch name {
	case ProfileLAN:
		return memberlist.DefaultLANConfig(), nil
	case ProfileWAN:
		return memberlist.DefaultWANConfig(), nil
	case ProfileFast:
		return fastConfig(), nil
	}
	return nil, fmt.Errorf("unknown gossip profile %q (want %s, %s or %s)", name, ProfileFast, ProfileLAN, ProfileWAN)
}

// fastConfig is tuned for one ~10-node pool spanning two regions whose one-way latency is up to
// FastMaxOneWay (225 ms, jitter included). Detection time of a silent node is
//
//	wait for the first probe of it (random: every survivor probes one member per interval, in a
//	shuffled round over all N−1 others)
//	+ ProbeInterval (a probe fails only when no ack came back within the whole interval)
//	+ suspicion timeout (SuspicionMult × max(1, log10 N) × ProbeInterval = 0.6 s for N ≤ 10)
//	+ a gossip hop (~GossipInterval)
//
// The first-probe wait dominates the tail. When a whole region of the default topology is cut
// off, 4 survivors must each find 2 victims among 7 members, so the later victim waits on average
// ~2 intervals and in 1 % of cases ~5. A simulation of exactly that (memberlist's shuffled rounds)
// gives for the GeoDNS flip (both web nodes dead + hop + DNS poll): at ProbeInterval 800 ms median
// 3.4 s, p90 5.0 s, P(> 5 s) = 10 %; at 600 ms median 2.7 s, p90 3.8 s, P(> 5 s) < 1 %. Measured
// with real nodes (region black-hole, 18 trials): 800 ms gave median 3.3 s, worst 5.1–5.9 s.
//
// Why not faster: the ack window is the probe interval, and indirect probes cannot rescue a
// cross-region probe (they start at ProbeTimeout and need a full RTT too), so ProbeTimeout must
// exceed the worst RTT. 600/500 ms lets a 2 × 225 ms RTT answer directly with 50 ms to spare for
// a busy CPU. Drills that push the WAN beyond that (e.g. +300 ms) need the wan profile; the
// topology rejects a fast profile on a slower WAN.
func fastConfig() *memberlist.Config {
	c := memberlist.DefaultLocalConfig()
	// A probe succeeds if any ack (direct, or relayed by an indirect prober) arrives within the
	// probe interval, not just within ProbeTimeout. Detection time scales with it.
	c.ProbeInterval = 600 * time.Millisecond
	// After ProbeTimeout without an ack the indirect probes start; they travel the same slow
	// link, so a relayed ack also needs ~one RTT. 500 ms lets a plain cross-region RTT of up to
	// 2 × FastMaxOneWay answer directly, so healthy WAN probes raise no indirect traffic.
	c.ProbeTimeout = 500 * time.Millisecond
	// The suspicion timer (1 × 600 ms for N ≤ 10) is the second detection cost. 1 is the
	// smallest value: a falsely suspected node must refute within 600 ms (suspect gossip out and
	// refutation back, one RTT plus gossip hops), which the WAN latency test checks at
	// FastMaxOneWay with jitter. With SuspicionMult−2 < 0 no peer confirmations are awaited: the
	// timer is always the minimum.
	c.SuspicionMult = 1
	// Two indirect probers, so one slow or dead relay cannot fail a probe on its own.
	c.IndirectChecks = 2
	// Each broadcast (suspect/alive/dead/meta) goes to RetransmitMult × ceil(log10(N+1)) gossip
	// targets in all, picked at random among the members not dead for GossipToTheDeadTime. At 3
	// that is 3 targets for N ≤ 9: when a region is black-holed half of them are in it, so a
	// survivor missed a suspicion or death about a third of the time and had to find it with its
	// own probe, up to a probe round later (seen in the region-outage drill: +0.7 s on the
	// GeoDNS flip). 6 reaches every survivor of a 10-node pool in one or two gossip rounds.
	c.RetransmitMult = 6
	// Gossip every 100 ms to 3 nodes: a state change reaches everyone in a few hundred ms.
	c.GossipInterval = 100 * time.Millisecond
	c.GossipNodes = 3
	// Full state sync every 5 s repairs anything gossip missed, cheaply for a small pool.
	c.PushPullInterval = 5 * time.Second
	// A push/pull across the WAN costs a dial + write + reply ≈ 3 × 300 ms; 2 s leaves margin
	// while a black-holed peer still fails fast.
	c.TCPTimeout = 2 * time.Second
	// Keep gossiping to a node for 5 s after it was declared dead, so a short false death can
	// still be refuted; after that it is forgotten and the rejoin loop must bring it back.
	c.GossipToTheDeadTime = 5 * time.Second
	// Lifeguard stretches a node's probe interval up to this factor while the node itself looks
	// unhealthy (missed acks, e.g. CPU starvation on a busy host). The default 8 made failure
	// detection take up to 8 s on a loaded 2-core machine; 2 keeps the protection but bounds
	// the tail.
	c.AwarenessMaxMultiplier = 2
	// A restarted node may come back on a new address under the same name after 1 s.
	c.DeadNodeReclaimTime = time.Second
	return c
}

// SmallPoolLimit is the largest pool that keeps the small-pool behaviour: the fast profile's
// timings (scaleFast) and eager rejoins (the rejoin loop, whatever the profile). Every built-in
// topology (up to 18 gossip members) is within it.
const SmallPoolLimit = 24

// scaleFast adapts the fast profile to a pool of n members above SmallPoolLimit. Its small-pool
// timings assume each node answers a probe within 500 ms and that a suspicion needs no second
// opinion; a hundred agents sharing two cores break both: measured at 110 agents, probes went
// unanswered for want of CPU, suspects were declared dead after 1.2 s "with 0 peer
// confirmations", their refutations and the alive storms that followed overflowed memberlist's
// message queue, and the pool never converged. Large pools trade detection speed for stability:
func scaleFast(c *memberlist.Config, n int) {
	if n <= SmallPoolLimit {
		return
	}
	// One probe a second per member, as memberlist's LAN preset: a busy host answers within it.
	c.ProbeInterval = time.Second
	// A second opinion before a death: with SuspicionMult 3 one peer's confirmation is awaited
	// (k = mult − 2), and the timer runs between 3 × log10(n) probe intervals (about 6 s at
	// 110) and six times that without confirmations. A truly dead member is confirmed by the
	// many members that probe it, so detection stays near the minimum.
	c.SuspicionMult = 3
	// Lifeguard may slow an overloaded member's own probing up to 4x (the fast preset's 2
	// bounded detection in small pools; here false suspicions cost more than slow ones).
	c.AwarenessMaxMultiplier = 4
	// Gossip five times a second and retransmit each broadcast 4 × log10(n+1) times (12 at 110):
	// every node re-broadcasts what it learns, so the small-pool 6 multiplied into thousands of
	// copies of each state change.
	c.GossipInterval = 200 * time.Millisecond
	c.RetransmitMult = 4
}
