package db

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/drillworks/drill/agents/peerauth"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const (
	// maxValueBytes caps a PUT body.
	maxValueBytes = 1 << 20
	// defaultReadWait is how long a read with min_lsn waits for the node to catch up by default.
	defaultReadWait = 500 * time.Millisecond
)

// errorBody is every error response; like every response it names the node, region, epoch and lsn.
type errorBody struct {
	Error string `json:"error"`
	// Primary is the primary this node follows (on "not primary").
	Primary string `json:"primary,omitempty"`
	// Outcome is "unknown" when the write reached the local log but could not be acknowledged.
	Outcome string `json:"outcome,omitempty"`
	// WriteLSN is the LSN such a write got, so a drill can check later whether it survived.
	WriteLSN uint64 `json:"write_lsn,omitempty"`
	Node     string `json:"node"`
	Region   string `json:"region"`
	Epoch    uint64 `json:"epoch"`
	LSN      uint64 `json:"lsn"`
}

// Handler is the node's HTTP API: /v1/kv/{key}, /v1/wal, /v1/log, /v1/lease, /v1/status (every call signed
// with the run's db key, peerauth) and /metrics (open: operational numbers, no data).
func (n *Node) Handler() http.Handler {
	api := http.NewServeMux()
	api.HandleFunc("PUT /v1/kv/{key...}", n.handlePut)
	api.HandleFunc("GET /v1/kv/{key...}", n.handleGet)
	api.HandleFunc("GET /v1/wal", n.handleWAL)
	api.HandleFunc("GET /v1/log", n.handleLog)
	voter := n.voter.Handler()
	api.Handle("POST /v1/lease", voter)
	api.Handle("GET /v1/lease", voter)
	api.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, n.State())
	})
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{}))
	mux.Handle("/", peerauth.RequireNode(n.cfg.AuthKey, n.cfg.Name, api))
	return mux
}

// writeError fills in the node fields of body and writes it.
func (n *Node) writeError(w http.ResponseWriter, status int, body errorBody) {
	n.mu.Lock()
	body.Node, body.Region, body.Epoch, body.LSN = n.cfg.Name, n.cfg.Region, n.epoch, n.lastLSNLocked()
	n.mu.Unlock()
	writeJSON(w, status, body)
}

func (n *Node) handlePut(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if key == "" {
		n.writeError(w, http.StatusBadRequest, errorBody{Error: "empty key"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxValueBytes))
	if err != nil {
		n.writeError(w, http.StatusBadRequest, errorBody{Error: "read value: " + err.Error()})
		return
	}
	if !utf8.Valid(body) || !utf8.ValidString(key) {
		n.writeError(w, http.StatusBadRequest, errorBody{Error: "key and value must be UTF-8 text"})
		return
	}
	lsn, epoch, ackBy, err := n.put(r.Context(), key, string(body))
	if err == nil {
		n.metrics.writes.WithLabelValues("ok").Inc()
		if !ackBy.IsZero() {
			// The acknowledgement is only true while the lease lasts: a pause (GC, SIGSTOP, a
			// frozen container) between the check and the send must not deliver it later, when a
			// new primary may have taken writes (finding 6). Past the deadline the connection
			// fails instead and the client sees an unknown outcome.
			_ = http.NewResponseController(w).SetWriteDeadline(ackBy)
		}
		if hook := n.beforeAck.Load(); hook != nil {
			(*hook)()
		}
		writeJSON(w, http.StatusOK, WriteResult{Key: key, LSN: lsn, Epoch: epoch, Node: n.cfg.Name, Region: n.cfg.Region})
		return
	}
	n.mu.Lock()
	following := n.following
	n.mu.Unlock()
	var unknown unknownOutcomeError
	switch {
	case errors.Is(err, errSemiSyncTimeout):
		n.metrics.writes.WithLabelValues("semi_sync_timeout").Inc()
		n.writeError(w, http.StatusGatewayTimeout, errorBody{Error: "semi-sync timeout", Outcome: "unknown", WriteLSN: lsn})
	case errors.As(err, &unknown):
		n.metrics.writes.WithLabelValues("unknown").Inc()
		n.writeError(w, http.StatusServiceUnavailable, errorBody{Error: unknown.err.Error(), Outcome: "unknown", WriteLSN: lsn, Primary: following})
	case errors.Is(err, errNotPrimary):
		n.metrics.writes.WithLabelValues("not_primary").Inc()
		n.writeError(w, http.StatusServiceUnavailable, errorBody{Error: "not primary", Primary: following})
	case errors.Is(err, errNoLease):
		n.metrics.writes.WithLabelValues("no_lease").Inc()
		n.writeError(w, http.StatusServiceUnavailable, errorBody{Error: "no lease"})
	case errors.Is(err, errClosed):
		n.metrics.writes.WithLabelValues("closed").Inc()
		n.writeError(w, http.StatusServiceUnavailable, errorBody{Error: "node closed"})
	default:
		n.metrics.writes.WithLabelValues("error").Inc()
		n.writeError(w, http.StatusInternalServerError, errorBody{Error: err.Error()})
	}
}

func (n *Node) handleGet(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	q := r.URL.Query()
	minLSN, ok := n.uintParam(w, q, "min_lsn")
	if !ok {
		return
	}
	minEpoch, ok := n.uintParam(w, q, "min_epoch")
	if !ok {
		return
	}
	wait, ok := n.waitParam(w, q, defaultReadWait)
	if !ok {
		return
	}
	n.mu.Lock()
	if !n.awaitLocked(w, r, wait, func() bool { return n.holdsLocked(minLSN, minEpoch) }) {
		return
	}
	if !n.holdsLocked(minLSN, minEpoch) {
		n.mu.Unlock()
		n.writeError(w, http.StatusConflict, errorBody{Error: "behind"})
		return
	}
	if q.Get("consistent") != "" {
		// A linearizable read: only the primary, and only while it holds the lease, so no newer
		// primary can have acknowledged a write this node has not seen.
		switch {
		case n.role != RolePrimary:
			following := n.following
			n.mu.Unlock()
			n.writeError(w, http.StatusServiceUnavailable, errorBody{Error: "not primary", Primary: following})
			return
		case !n.leaseValidLocked(n.now()):
			n.mu.Unlock()
			n.writeError(w, http.StatusServiceUnavailable, errorBody{Error: "no lease"})
			return
		}
	}
	v, found := n.data[key]
	res := ReadResult{Key: key, Value: v.value, Found: found, KeyLSN: v.lsn, LSN: n.lastLSNLocked(),
		Epoch: n.epoch, Node: n.cfg.Name, Region: n.cfg.Region}
	n.mu.Unlock()
	status := http.StatusOK
	if !found {
		status = http.StatusNotFound
	}
	writeJSON(w, status, res)
}

// holdsLocked reports whether this node's log provably holds a write acknowledged at minLSN in
// epoch minEpoch, for read-your-writes. Its length alone does not tell: a node that was primary
// of an older epoch may hold a longer divergent suffix it has not yet truncated, its LSNs past
// minLSN yet without the write (found by the flapping-partition drill). So the log must also match
// a primary of minEpoch or later: it is that primary's (n.epoch), or a pull from such a primary was
// applied without truncation, which confirms the prefix (matchedEpoch). minEpoch 0 (clients before
// min_epoch) checks the length alone.
func (n *Node) holdsLocked(minLSN, minEpoch uint64) bool {
	if n.lastLSNLocked() < minLSN {
		return false
	}
	if n.role == RolePrimary {
		return n.epoch >= minEpoch
	}
	return n.matchedEpoch >= minEpoch
}

// formatUint is strconv.FormatUint in base 10.
func formatUint(v uint64) string { return strconv.FormatUint(v, 10) }

// LogPage is a page of a node's log as it stands (GET /v1/log?from=N&limit=M): what drill's
// log-matching invariant compares across nodes. Values are left out; a write's key names it.
type LogPage struct {
	// Entries are the entries from LSN from on, at most limit of them.
	Entries []LogEntry `json:"entries"`
	// LastLSN is the node's last LSN.
	LastLSN uint64 `json:"last_lsn"`
}

// LogEntry is one entry of a LogPage.
type LogEntry struct {
	LSN   uint64 `json:"lsn"`
	Epoch uint64 `json:"epoch"`
	Key   string `json:"key"`
}

// maxLogPage bounds a page of /v1/log.
const maxLogPage = 10000

// fromLSN reads the from query parameter of /v1/wal and /v1/log (an LSN >= 1), answering 400
// when it is not one.
func (n *Node) fromLSN(w http.ResponseWriter, q url.Values) (uint64, bool) {
	from, err := strconv.ParseUint(q.Get("from"), 10, 64)
	if err != nil || from < 1 {
		n.writeError(w, http.StatusBadRequest, errorBody{Error: "from must be an LSN >= 1"})
		return 0, false
	}
	return from, true
}

// uintParam reads the optional unsigned query parameter name ("" is 0), answering 400 "bad <name>"
// when it is not one.
func (n *Node) uintParam(w http.ResponseWriter, q url.Values, name string) (uint64, bool) {
	v, err := parseOptionalUint(q.Get(name))
	if err != nil {
		n.writeError(w, http.StatusBadRequest, errorBody{Error: "bad " + name})
		return 0, false
	}
	return v, true
}

// waitParam reads the wait_ms query parameter (parseWait: "" is def, capped at maxWait), answering
// 400 "bad wait_ms" when it is not a wait.
func (n *Node) waitParam(w http.ResponseWriter, q url.Values, def time.Duration) (time.Duration, bool) {
	wait, err := parseWait(q.Get("wait_ms"), def)
	if err != nil {
		n.writeError(w, http.StatusBadRequest, errorBody{Error: "bad wait_ms"})
		return 0, false
	}
	return wait, true
}

// awaitLocked is the long-poll of a request: with n.mu held, it waits until ready() holds or wait
// has passed, releasing n.mu while it sleeps on n.applied (closed whenever the log changes) and
// calling ready again, n.mu held, after every wake-up. It returns true with n.mu held. It returns
// false, n.mu released, when the request is over first: its client went away, or the node closed
// (answered 503 "node closed").
func (n *Node) awaitLocked(w http.ResponseWriter, r *http.Request, wait time.Duration, ready func() bool) bool {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for timedOut := false; !ready() && !timedOut; {
		wake := n.applied
		n.mu.Unlock()
		select {
		case <-wake:
		case <-timer.C:
			timedOut = true
		case <-r.Context().Done():
			return false
		case <-n.ctx.Done():
			n.writeError(w, http.StatusServiceUnavailable, errorBody{Error: "node closed"})
			return false
		}
		n.mu.Lock()
	}
	return true
}

func (n *Node) handleLog(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, ok := n.fromLSN(w, q)
	if !ok {
		return
	}
	limit := uint64(maxLogPage)
	if l := q.Get("limit"); l != "" {
		var err error
		if limit, err = strconv.ParseUint(l, 10, 64); err != nil || limit < 1 || limit > maxLogPage {
			n.writeError(w, http.StatusBadRequest, errorBody{Error: fmt.Sprintf("limit must be 1..%d", maxLogPage)})
			return
		}
	}
	n.mu.Lock()
	page := LogPage{LastLSN: n.lastLSNLocked(), Entries: []LogEntry{}}
	for lsn := from; lsn <= page.LastLSN && uint64(len(page.Entries)) < limit; lsn++ {
		e := n.entries[lsn-1]
		page.Entries = append(page.Entries, LogEntry{LSN: e.LSN, Epoch: e.Epoch, Key: e.Key})
	}
	n.mu.Unlock()
	writeJSON(w, http.StatusOK, page)
}
