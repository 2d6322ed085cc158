package runner

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/drillworks/drill/agents/db"
	"github.com/drillworks/drill/agents/peerauth"
	"github.com/drillworks/drill/compose/observe"
	"github.com/drillworks/drill/drills/history"
	"github.com/drillworks/drill/topology"
)

// sampleEvery is how often replication lag and the primary are sampled into the history.
const sampleEvery = 250 * time.Millisecond

// sample records replication lag of every db node and every change of primary, and prints a
// progress line with the workload's counters every few seconds.
func (r *run) sample(ctx context.Context) {
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	var lastPrimary string
	var lastEpoch uint64
	lastProgress := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		st, err := r.sys.Status(ctx)
		if err != nil {
			continue
		}
		for _, n := range st.Nodes {
			// Lag is sampled on replicas only, from their own view: a primary reports no lag.
			if n.Role != topology.RoleDB || n.Primary || !n.State.Up() {
				continue
			}
			r.rec.Append(history.Op{Type: history.TypeLag, Node: n.Name, Region: n.Region, LagMS: n.LagMS})
		}
		r.recordQueues(st)
		if p := st.Primary(r.topo, true); p.Name != "" && (p.Name != lastPrimary || p.Epoch != lastEpoch) {
			r.rec.Append(history.Op{Type: history.TypeEpoch, Node: p.Name, Region: p.Region, Epoch: p.Epoch})
			if lastPrimary != "" {
				r.progress("primary is now %s (epoch %d)", p.Name, p.Epoch)
			}
			lastPrimary, lastEpoch = p.Name, p.Epoch
		}
		// A terminal shows the counters on its live status line instead.
		if !r.o.Live && time.Since(lastProgress) >= 3*time.Second && r.wl != nil && r.wlEnd.IsZero() {
			lastProgress = time.Now()
			r.progress("workload: %s", counters(r.rec.Ops(), r.topo.RegionNames()))
		}
	}
}

// counters summarises the writes so far per client region.
func counters(ops []history.Op, regions []string) string {
	type c struct{ ok, fail, info int }
	by := map[string]*c{}
	for _, op := range ops {
		if op.F != history.FWrite || !history.IsCompletion(op.Type) {
			continue
		}
		x := by[op.ClientRegion]
		if x == nil {
			x = &c{}
			by[op.ClientRegion] = x
		}
		switch op.Type {
		case history.TypeOK:
			x.ok++
		case history.TypeFail:
			x.fail++
		default:
			x.info++
		}
	}
	out := ""
	for _, region := range regions {
		x := by[region]
		if x == nil {
			x = &c{}
		}
		out += fmt.Sprintf("%s writes ok=%d fail=%d unknown=%d  ", region, x.ok, x.fail, x.info)
	}
	return out
}

// recordQueues records the backlog of every queue alive and ready in st (known only while the
// queue is alive in gossip and its JetStream answers: a queue that cannot count its backlog
// leaves no sample, never a zero). The sampler calls it, and so does every queue condition's
// poll: the sample that let queue_drained pass is in the history too.
func (r *run) recordQueues(st *observe.Status) {
	for _, n := range st.Nodes {
		if n.Role == topology.RoleQueue && n.State == observe.StateAlive && n.Ready {
			r.rec.Append(history.Op{Type: history.TypeQueue, Node: n.Name, Region: n.Region, Backlog: n.Backlog})
		}
	}
}

// finalRead waits for the healed cluster to converge, then reads every key the workload tried to
// write from the primary, recording "final" ops for the lost-writes checks.
func (r *run) finalRead(ctx context.Context) error {
	var primary string
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := r.sys.Status(ctx)
		if err == nil {
			p := st.Primary(r.topo, true)
			caught := p.Name != ""
			for _, n := range st.Nodes {
				if n.Role == topology.RoleDB && n.Name != p.Name && (n.State != observe.StateAlive || n.LSN != p.LSN || n.Epoch != p.Epoch) {
					caught = false
				}
			}
			if caught {
				primary = p.Name
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("final read: the cluster did not converge within 30s after heal")
		}
		if err := sleep(ctx, pollEvery); err != nil {
			return err
		}
	}
	r.progress("final read of every written key from %s", primary)
	addr, err := r.sys.Endpoint(primary, topology.PortDB)
	if err != nil {
		return err
	}
	keys := map[string]bool{}
	for _, op := range r.rec.Ops() {
		if op.F == history.FWrite && op.Type == history.TypeInvoke {
			keys[op.Key] = true
		}
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	hc := peerauth.ClientFor(peerauth.Derive(r.sys.Plan().Secret, peerauth.PurposeDB), 3*time.Second, r.sys.Plan().NodeAt)
	work := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				op, err := readKey(ctx, hc, addr, k)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				op.Node = primary
				r.rec.Append(op)
			}
		}()
	}
	for _, k := range sorted {
		work <- k
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return r.recordLogs(ctx, hc)
}

// logChunk bounds the entries of one log op, so a long log stays within a history line's limit.
const logChunk = 5000

// recordLogs records every database node's whole log (log ops) for the log-matching invariant;
// finalRead calls it once every replica has caught up.
func (r *run) recordLogs(ctx context.Context, hc *http.Client) error {
	for _, n := range r.topo.NodesOf(topology.RoleDB, "") {
		addr, err := r.sys.Endpoint(n.Name, topology.PortDB)
		if err != nil {
			return err
		}
		entries, err := (&db.Client{BaseURL: "http://" + addr, HTTP: hc}).Log(ctx)
		if err != nil {
			return fmt.Errorf("read the log of %s: %w", n.Name, err)
		}
		log := make([]history.LogEntry, len(entries))
		for i, e := range entries {
			log[i] = history.LogEntry{LSN: e.LSN, Epoch: e.Epoch, Key: e.Key}
		}
		for len(log) > 0 {
			chunk := log[:min(len(log), logChunk)]
			log = log[len(chunk):]
			r.rec.Append(history.Op{Type: history.TypeLog, Node: n.Name, Region: n.Region, Log: chunk})
		}
	}
	return nil
}

// readKey reads one key from the primary for the final read.
func readKey(ctx context.Context, hc *http.Client, addr, key string) (history.Op, error) {
	c := db.Client{BaseURL: "http://" + addr, HTTP: hc}
	res, err := c.Get(ctx, key, 0)
	if err != nil {
		return history.Op{}, fmt.Errorf("final read of %s: %w", key, err)
	}
	return history.Op{Type: history.TypeFinal, Key: key, Value: res.Value, Found: res.Found, KeyLSN: res.KeyLSN, Epoch: res.Epoch}, nil
}

// probeEvery is how often the canary users ask GeoDNS where they are sent.
const probeEvery = 200 * time.Millisecond

// probeDNS runs one canary user near each region: it asks GeoDNS where users of its region are
// sent, exactly as the workload's clients do (same source subnet, same name-server order), every
// probeEvery, and records every answer as a "dns" op of that client region. The workload's
// clients only look up when their cached answer expires or a request fails; the canaries time
// the moment GeoDNS itself moved users, to within probeEvery.
func (r *run) probeDNS(ctx context.Context) {
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, region := range r.topo.RegionNames() {
			got, ips, err := r.prober.Probe(ctx, region)
			if ctx.Err() != nil {
				return
			}
			op := history.Op{Type: history.TypeDNS, ClientRegion: region, DNSAnswer: ips, DNSRegion: got}
			if err != nil {
				op.Error = err.Error()
			}
			r.rec.Append(op)
		}
	}
}
