package gossip

import (
	"time"

	"github.com/drillworks/drill/topology"
)

// Meta is what every node publishes about itself in gossip (memberlist NodeMeta, at most 512 bytes,
// encoded as compact JSON). Short JSON keys keep it well under the limit.
type Meta struct {
	// Region is the node's region; empty for the witness and the WAN node.
	Region string `json:"r,omitempty"`
	// Role is the node's role.
	Role topology.Role `json:"ro"`
	// Epoch is the database epoch the node knows (db nodes: their own epoch).
	Epoch uint64 `json:"e,omitempty"`
	// Primary is true on the db node that believes it is the primary.
	Primary bool `json:"p,omitempty"`
	// Healthy is the node's own verdict on itself (web: can serve; db: store open).
	Healthy bool `json:"h,omitempty"`
	// Leaving is set just before a graceful leave, because memberlist cannot tell leave from death.
	Leaving bool `json:"l,omitempty"`
	// LSN is the db node's applied log sequence number.
	LSN uint64 `json:"n,omitempty"`
	// LastEpoch is the epoch of the db node's last log entry.
	LastEpoch uint64 `json:"le,omitempty"`
	// Unfit marks a db node that cannot take writes (its log failed): never a failover candidate.
	Unfit bool `json:"u,omitempty"`
	// Service is the node's main service address (ip:port), e.g. the web or db HTTP listener.
	Service string `json:"s,omitempty"`
	// Backlog is a queue node's count of jobs in its region's stream not yet acknowledged by a
	// worker (waiting or being worked on).
	Backlog uint64 `json:"b,omitempty"`
}

// State is a member's liveness as this node sees it.
type State string

const (
	// StateAlive: memberlist considers the node alive (possibly suspect).
	StateAlive State = "alive"
	// StateDead: memberlist declared the node failed.
	StateDead State = "dead"
	// StateLeft: the node left gracefully (it published Leaving before going).
	StateLeft State = "left"
)

// Member is one node as seen through gossip.
type Member struct {
	// Name is the node name (unique in the cluster).
	Name string `json:"name"`
	// Addr is the gossip address, ip:port.
	Addr string `json:"addr"`
	// Meta is the node's last published metadata.
	Meta Meta `json:"meta"`
	// State is alive, dead or left.
	State State `json:"state"`
	// Since is when State last changed (as seen locally).
	Since time.Time `json:"since"`
}

// Alive reports whether the member is alive.
func (m Member) Alive() bool { return m.State == StateAlive }

// PrimaryOf is the current primary in a gossip view: the alive db node claiming primary with the
// highest epoch ("" if none). The web tier writes to it and workers record completions on it.
func PrimaryOf(ms []Member) (name string, epoch uint64) {
	for _, m := range ms {
		if m.Meta.Role == topology.RoleDB && m.Alive() && m.Meta.Primary && (name == "" || m.Meta.Epoch > epoch) {
			name, epoch = m.Name, m.Meta.Epoch
		}
	}
	return name, epoch
}
