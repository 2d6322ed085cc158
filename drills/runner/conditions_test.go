package runner

import (
	"strings"
	"testing"

	"github.com/drillworks/drill/compose/observe"
	"github.com/drillworks/drill/drills/spec"
	"github.com/drillworks/drill/topology"
)

// TestQueueCondition: queue_drained and queue_backlog judge only a backlog a ready queue counted;
// a queue whose JetStream did not answer keeps the condition false (its last count may be old),
// so a failed count never reads as drained.
func TestQueueCondition(t *testing.T) {
	queue := func(region string, ready bool, backlog uint64) observe.NodeStatus {
		return observe.NodeStatus{Name: region + "-queue-1", Region: region, Role: topology.RoleQueue,
			State: observe.StateAlive, Ready: ready, Backlog: backlog}
	}
	drained := spec.Condition{Kind: spec.CondQueueDrained}
	backlogEU := spec.Condition{Kind: spec.CondQueueBacklog, Region: "eu-west"}
	for _, tc := range []struct {
		name  string
		nodes []observe.NodeStatus
		cond  spec.Condition
		want  bool
		why   string
	}{
		{"drained", []observe.NodeStatus{queue("us-east", true, 0), queue("eu-west", true, 0)}, drained, true, "backlog: "},
		{"one queue holds jobs", []observe.NodeStatus{queue("us-east", true, 3), queue("eu-west", true, 0)}, drained, false, "holds 3 jobs"},
		{"a queue that cannot count is not drained", []observe.NodeStatus{queue("us-east", false, 0), queue("eu-west", true, 0)}, drained, false, "backlog is unknown"},
		{"a dead queue is not drained", []observe.NodeStatus{{Name: "us-east-queue-1", Region: "us-east", Role: topology.RoleQueue, State: observe.StateDead}}, drained, false, "is dead"},
		{"backlog in the region", []observe.NodeStatus{queue("us-east", true, 0), queue("eu-west", true, 2)}, backlogEU, true, "eu-west-queue-1 2"},
		{"no backlog in the region", []observe.NodeStatus{queue("us-east", true, 5), queue("eu-west", true, 0)}, backlogEU, false, "holds no job"},
		{"an old count is no backlog", []observe.NodeStatus{queue("eu-west", false, 2)}, backlogEU, false, "backlog is unknown"},
		{"no queue node", []observe.NodeStatus{{Name: "eu-west-web-1", Region: "eu-west", Role: topology.RoleWeb, State: observe.StateAlive}}, backlogEU, false, "no queue node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := queueCondition(&observe.Status{Nodes: tc.nodes}, tc.cond)
			if got != tc.want || !strings.Contains(why, tc.why) {
				t.Errorf("queueCondition = %v (%s), want %v (containing %q)", got, why, tc.want, tc.why)
			}
		})
	}
}
