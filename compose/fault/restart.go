package fault

// KindRestart kills and at once restarts a node, or every node of a region: a one-off event with
// nothing to undo.
const KindRestart Kind = "restart"

func init() {
	register(processKind{kind: KindRestart, action: ActionRestart,
		summary: "kill a node or every node of a region and start it again at once (nothing to heal)"})
}
