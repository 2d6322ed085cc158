package gossip

import (
	"fmt"
	"time"

	"github.com/hashicorp/memberlist"
)

// Profile names.
const (
	// ProfileFast is the drill default: detect death in ~2–3 s, tolerate a ~650 ms WAN RTT.
	ProfileFast = "fast"
	// ProfileLAN is memberlist.DefaultLANConfig.
	ProfileLAN = "lan"
	// ProfileWAN is memberlist.DefaultWANConfig.
	ProfileWAN = "wan"
)

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
// ~300 ms (+ jitter). Detection time of a silent node is
//
//	wait for the first probe of it (random: every survivor probes one member per interval)
//	+ ProbeInterval (a probe fails only when no ack came back within the whole interval)
//	+ suspicion timeout (SuspicionMult × max(1, log10 N) × ProbeInterval = 0.8 s for N ≤ 10)
//	+ a gossip hop (~GossipInterval)
//
// = 1.6 s + the first-probe wait; measured (20 trials, 2 victims, busy 2-core box): median 3.1 s, worst 5.5 s.
// A false death needs a probe to fail *and* the suspect to stay silent for 0.8 s although it
// refutes in about one RTT plus a gossip hop.
//
// Why not faster: the ack window is the probe interval, and indirect probes cannot rescue a
// cross-region probe (they start at ProbeTimeout and need a full RTT too), so ProbeInterval must
// exceed the worst RTT. Measured with 8–10 nodes at 300 ms one-way: 800 ms gave no suspicion at
// ±50 ms or ±100 ms jitter over 30 s; 700 ms (median detection ≈ 2.75 s) raised 3 suspicions at
// ±50 ms and 24 suspicions with false deaths (flapping) at ±100 ms.
func fastConfig() *memberlist.Config {
	c := memberlist.DefaultLocalConfig()
	// A probe succeeds if any ack (direct, or relayed by an indirect prober) arrives within the
	// probe interval, not just within ProbeTimeout. 800 ms covers a 600 ms RTT + jitter, and is
	// as short as that allows, because detection time scales with it.
	c.ProbeInterval = 800 * time.Millisecond
	// After ProbeTimeout without an ack the indirect probes start; they travel the same slow
	// link, so a relayed ack also needs ~one RTT. It must stay below ProbeInterval; 700 ms lets
	// a plain cross-region RTT answer directly, so healthy WAN probes raise no indirect traffic.
	c.ProbeTimeout = 700 * time.Millisecond
	// The suspicion timer (1 × 800 ms for N ≤ 10) is the main detection cost. 1 is the smallest
	// value, chosen for the GeoDNS failover target (median ≤ 3 s for a region's web nodes): a
	// falsely suspected node must refute within 800 ms (suspect gossip out ~300 ms + refutation
	// back ~300 ms at the wan-latency drill's 300 ms one-way), which the latency tests show it
	// does with ±50 ms jitter; at ±220 ms jitter a false death was seen (mult 2 had none). With
	// SuspicionMult−2 < 0 no peer confirmations are awaited: the timer is always the minimum.
	c.SuspicionMult = 1
	// Two indirect probers, so one slow or dead relay cannot fail a probe on its own.
	c.IndirectChecks = 2
	// Each broadcast (suspect/alive/dead/meta) goes out 3 × ceil(log10(N+1)) times: enough to
	// reach every node of a 10–20 node pool quickly even if a packet or two is lost.
	c.RetransmitMult = 3
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
