package docker

import (
	"fmt"
	"os"
	"strings"
)

// Identity lives in labels (as in kind): every container and network drill creates carries them,
// and drill lists and removes only objects that carry them. Keys are reverse-DNS, as Docker asks
// of tools; drill before them used the same keys under "drill." (legacyPrefix), and still finds
// and removes this owner's objects so labelled.
const (
	// labelPrefix starts every key.
	labelPrefix = "io.github.drillworks.drill."
	// legacyPrefix started every key of drill's objects before reverse-DNS keys.
	legacyPrefix = "drill."
	// LabelTopology is the topology's name.
	LabelTopology = labelPrefix + "topology"
	// LabelRun is the plan's run id.
	LabelRun = labelPrefix + "run"
	// LabelOwner is who made the object (Owner): two users of one engine, even of one topology,
	// never list or remove each other's objects.
	LabelOwner = labelPrefix + "owner"
	// LabelNode is the node's name (node containers; a helper names its target).
	LabelNode = labelPrefix + "node"
	// LabelRole is the node's role, RoleHelper for packet-rule helpers, "network" for networks.
	LabelRole = labelPrefix + "role"
	// LabelImage marks drill's node images.
	LabelImage = labelPrefix + "image"
	// LabelBinarySHA is the SHA-256 of the drill binary inside a node image.
	LabelBinarySHA = labelPrefix + "binary.sha256"
)

// legacy is a selector in the keys drill used before reverse-DNS keys.
func legacy(labels map[string]string) map[string]string {
	out := make(map[string]string, len(labels))
	for k, v := range labels {
		out[legacyPrefix+strings.TrimPrefix(k, labelPrefix)] = v
	}
	return out
}

// selectors are a selector in today's keys and in the legacy ones.
func selectors(labels map[string]string) []map[string]string {
	return []map[string]string{labels, legacy(labels)}
}

// label is an object's label by today's key, or by its legacy key on an older object.
func label(labels map[string]string, key string) string {
	if v, ok := labels[key]; ok {
		return v
	}
	return labels[legacyPrefix+strings.TrimPrefix(key, labelPrefix)]
}

// RoleHelper is the role label of the short-lived containers that change a node's packet rules.
const RoleHelper = "nft-helper"

// RoleNetwork is the role label of drill's networks.
const RoleNetwork = "network"

// RoleVolume is the role label of the data volumes of nodes on another engine than the default.
const RoleVolume = "volume"

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
