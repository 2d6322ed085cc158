package docker

// Identity lives in labels (as in kind): every container and network drill creates carries them,
// and drill lists and removes only objects that carry them.
const (
	// LabelTopology is the topology's name.
	LabelTopology = "drill.topology"
	// LabelRun is the plan's run id.
	LabelRun = "drill.run"
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
