package main

import (
	"testing"

	"github.com/drillworks/drill/topology/netalloc"
)

// TestQueueDrills runs the three queue drills on the local runtime, as they are and under their
// known-bad settings: each passes, and each known-bad variant fails on the check that catches it
// with a measured flaw. The queue is a real NATS JetStream embedded in the queue nodes' agents.
func TestQueueDrills(t *testing.T) {
	// One queue cluster at a time (netalloc.BigSlot): 18 processes each.
	runDrillTable(t, "queue", "queue", func(t *testing.T) { netalloc.BigSlot(t) }, []drillCase{
		{"worker-crash passes", []string{"worker-crash"}, ""},
		{"worker-crash loses jobs acked before the work", []string{"worker-crash", "--set", "queue_ack=before_work"}, "lost_jobs"},
		{"queue-region-outage passes", []string{"queue-region-outage"}, ""},
		{"queue-region-outage loses jobs with memory storage", []string{"queue-region-outage", "--set", "queue_storage=memory"}, "lost_jobs"},
		{"job-burst passes", []string{"job-burst"}, ""},
		{"job-burst drains too slowly with one job per worker", []string{"job-burst", "--set", "worker_concurrency=1"}, "backlog_drain"},
	})
}

// TestQueueRegionOutageMirroredOnDocker runs queue-region-outage on Docker with the mirrored
// design (leafnode links through the WAN node's toxiproxy, one JetStream domain per region): it
// passes, and the run leaves no container or network.
func TestQueueRegionOutageMirroredOnDocker(t *testing.T) {
	needDocker(t)
	skipShort(t)
	t.Parallel()
	// Alone on the engine (16 containers; beside another Docker cluster, CI measured 53 s to
	// bring it up), and the only queue cluster: the slots in their order, Docker first.
	netalloc.DockerEngine(t)
	netalloc.BigSlot(t)
	netalloc.ClusterSlot(t)
	e := newEnvOf(t, "queue-docker", "queue")
	code, out := e.run("queue-region-outage", "--set", "queue_replication=mirror", "--runtime", "docker")
	e.assertNoDockerObjects()
	e.judge(code, out, "")
}
