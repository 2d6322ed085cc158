// Package gossip runs a node's membership in the drill-wide hashicorp/memberlist cluster.
//
// Every drill node (web, db, dns, witness) publishes a small Meta (region, role, health, epoch…)
// through memberlist node metadata and learns everyone else's from it. On top of memberlist the
// package adds what a failure drill needs:
//   - timing profiles (Profile): "fast" detects a dead node in about 2–3 s yet tolerates a
//     ~650 ms cross-region RTT; "lan" and "wan" are the memberlist presets;
//   - a fault-injecting transport (Faults, Rules) that black-holes or delays gossip to and from
//     address prefixes, for UDP and TCP alike, so partitions and WAN latency can be drilled
//     without root or kernel support;
//   - a dead/left distinction memberlist itself cannot make (Meta.Leaving, see Members);
//   - a rejoin loop, because memberlist never re-forms a cluster after a partition heals.
package gossip
