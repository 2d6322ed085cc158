package docker

import (
	"fmt"
	"os"
)

// Identity lives in labels (as in kind): every container and network drill creates carries them,
// and drill lists and removes only objects that carry them.
const (
	// LabelTopology is the topology's name.
	LabelTopology = "drill.topology"
	// LabelRun is the plan's run id.
	LabelRun = "drill.run"
	// LabelOwner is who made the object (Owner): two users of one engine, even of one topology,
	// never list or remove each other's objects.
	LabelOwner = "drill.owner"
	// LabelNode is the node's name (node containers; a helper names its target).
	LabelNode = "drill.node"
	// LabelRole is the node's role, RoleHelper for packet-rule helpers, "network" for networks.
	LabelRole = "drill.role"
	// LabelImage marks drill's node images.
	LabelImage = "drill.image"
	// LabelBinarySHA is the SHA-256 of the drill binary inside a node image.
	LabelBinarySHA = "drill.binary.sha256"
)

// RoleHelper is the role label of the short-lived containers that change a node's packet rules.
const RoleHelper = "nft-helper"

// RoleNetwork is the role label of drill's networks.
const RoleNetwork = "network"

// Owner is this process's owner label: its uid on its host ("uid-1000@build-7"). The engine does
// not say who made an object, so drill records it; a user who can reach the engine's socket can
// fake it (the socket is root-equivalent anyway), so this prevents accidents, not attacks.
func Owner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return fmt.Sprintf("uid-%d@%s", os.Getuid(), host)
}

// ownLabels select the objects of one topology made by this owner (any run).
func ownLabels(topo string) map[string]string {
	return map[string]string{LabelTopology: topo, LabelOwner: Owner()}
}

// runLabels select the objects of one run made by this owner.
func runLabels(topo, runID string) map[string]string {
	l := ownLabels(topo)
	l[LabelRun] = runID
	return l
}

// objectLabels are the labels of a new object of a run: its run's labels plus its role (and node).
func objectLabels(topo, runID, role, node string) map[string]string {
	l := runLabels(topo, runID)
	l[LabelRole] = role
	if node != "" {
		l[LabelNode] = node
	}
	return l
}
