package db

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"
)

const (
	voterFileName       = "voter.json"
	maxLeaseDurationReq = time.Minute
	// MaxEpochLead is how far above the highest epoch a voter has seen a candidate's epoch may
	// be. Epochs grow by one per election; a request far ahead is forged or corrupt, and taking
	// it would fence every honest candidate out for good.
	MaxEpochLead = 64
)

// LeaseRequest asks a voter for the write lease (POST /v1/lease).
type LeaseRequest struct {
	// Candidate is the db node asking.
	Candidate string `json:"candidate"`
	// Epoch is the candidate's epoch.
	Epoch uint64 `json:"epoch"`
	// DurationMS is how long the lease should last on the voter's clock.
	DurationMS int64 `json:"duration_ms"`
	// DryRun asks whether the voter would grant, changing nothing (Raft's pre-vote): a node that
	// was fenced out asks before it promotes again, so that it never disrupts a primary that
	// still holds a majority lease.
	DryRun bool `json:"dry_run,omitempty"`
}

// LeaseResponse is a voter's answer.
type LeaseResponse struct {
	// Granted is true when the candidate now holds this voter's lease.
	Granted bool `json:"granted"`
	// Epoch is the highest epoch the voter has seen (after this request).
	Epoch uint64 `json:"epoch"`
	// Holder is the current holder of this voter's lease ("" = none).
	Holder string `json:"holder"`
	// HolderEpoch is the epoch in which Holder was last granted; a candidate rejected by a rival
	// holding the same epoch knows it lost that epoch's election.
	HolderEpoch uint64 `json:"holder_epoch"`
	// ExpiresInMS is how long the holder's lease still runs on the voter's clock (0 if expired).
	ExpiresInMS int64 `json:"expires_in_ms"`
}

// voterState is what a voter persists before answering.
type voterState struct {
	MaxEpoch    uint64 `json:"max_epoch"`
	Holder      string `json:"holder"`
	HolderEpoch uint64 `json:"holder_epoch"`
	// ExpiresUnixNano is the holder's expiry on the voter's wall clock.
	ExpiresUnixNano int64 `json:"expires_unix_nano"`
	// RaisedBy and RaisedUnixNano say who last raised MaxEpoch and when: a campaign in progress,
	// which a pre-vote of another candidate must not overtake.
	RaisedBy       string `json:"raised_by,omitempty"`
	RaisedUnixNano int64  `json:"raised_unix_nano,omitempty"`
}

// Voter is one lease voter: the witness runs one alone, and every db node runs one inside. It grants
// a time-bounded lease to at most one candidate at a time, and never to an epoch lower than one it
// has already seen, so a majority of voters fences an old primary out once a newer epoch has asked.
type Voter struct {
	dir    string
	logger *slog.Logger
	// candidates are the names allowed to ask (the plan's db nodes); nil allows any.
	candidates map[string]bool
	now        func() time.Time // the voter's clock; tests may replace it

	mu      sync.Mutex
	state   voterState
	expires time.Time // state.ExpiresUnixNano with the monotonic reading when set in this process
}

// OpenVoter loads (or creates) the voter state in dataDir. Only the named candidates (the plan's
// db nodes) may ask for the lease; none named allows any. Grants are timed on now (nil: real time).
func OpenVoter(dataDir string, candidates []string, now func() time.Time, logger *slog.Logger) (*Voter, error) {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create voter dir: %w", err)
	}
	v := &Voter{dir: dataDir, logger: logger, now: now}
	if len(candidates) > 0 {
		v.candidates = map[string]bool{}
		for _, c := range candidates {
			v.candidates[c] = true
		}
	}
	if _, err := readJSON(dataDir, voterFileName, &v.state); err != nil {
		return nil, fmt.Errorf("load voter state: %w", err)
	}
	if v.state.ExpiresUnixNano != 0 {
		v.expires = time.Unix(0, v.state.ExpiresUnixNano)
	}
	return v, nil
}

// Vote applies the voter rules to one request:
//   - a candidate that is not one of the plan's db nodes, or an epoch more than MaxEpochLead above
//     the highest seen, is an error (nothing changes);
//   - an epoch below the highest seen is rejected;
//   - the highest seen epoch is raised to the request's epoch, even when the lease is not granted,
//     so an old primary cannot renew once a newer epoch has asked;
//   - the lease is granted when there is no holder, the candidate already holds it, or the holder's
//     lease has expired on this voter's clock and the request's epoch is above the holder's; a
//     grant runs for the requested duration from now. An epoch is granted to one candidate only,
//     ever (Raft's one vote per term): two candidates that picked the same epoch cannot both
//     collect a majority of it, even one after the other.
//
// The new state is persisted (fsync) before the answer is returned.
func (v *Voter) Vote(req LeaseRequest) (LeaseResponse, error) {
	if req.Candidate == "" || req.DurationMS <= 0 || time.Duration(req.DurationMS)*time.Millisecond > maxLeaseDurationReq {
		return LeaseResponse{}, fmt.Errorf("invalid lease request: candidate %q, duration %d ms", req.Candidate, req.DurationMS)
	}
	if v.candidates != nil && !v.candidates[req.Candidate] {
		return LeaseResponse{}, fmt.Errorf("invalid lease request: %q is not a db node of the plan", req.Candidate)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if req.Epoch > v.state.MaxEpoch+MaxEpochLead {
		return LeaseResponse{}, fmt.Errorf("invalid lease request: epoch %d is more than %d above the highest seen (%d)",
			req.Epoch, MaxEpochLead, v.state.MaxEpoch)
	}
	now := v.now()
	if req.DryRun {
		st := v.state
		// Another candidate that raised the epoch within a lease's time is still campaigning.
		campaign := st.RaisedBy != "" && st.RaisedBy != req.Candidate &&
			now.Before(time.Unix(0, st.RaisedUnixNano).Add(time.Duration(req.DurationMS)*time.Millisecond))
		would := req.Epoch >= st.MaxEpoch && !campaign && grantable(st, v.expires, now, req)
		return LeaseResponse{Granted: would, Epoch: st.MaxEpoch, Holder: st.Holder, HolderEpoch: st.HolderEpoch}, nil
	}
	next := v.state
	nextExpires := v.expires
	granted := false
	if req.Epoch >= next.MaxEpoch {
		if req.Epoch > next.MaxEpoch {
			next.RaisedBy, next.RaisedUnixNano = req.Candidate, now.UnixNano()
		}
		next.MaxEpoch = req.Epoch
		if grantable(next, nextExpires, now, req) {
			granted = true
			next.Holder = req.Candidate
			next.HolderEpoch = req.Epoch
			nextExpires = now.Add(time.Duration(req.DurationMS) * time.Millisecond)
			next.ExpiresUnixNano = nextExpires.UnixNano()
		}
	}
	if next != v.state {
		if err := writeJSONAtomic(v.dir, voterFileName, next); err != nil {
			return LeaseResponse{}, fmt.Errorf("persist voter state: %w", err)
		}
		if next.Holder != v.state.Holder || next.MaxEpoch != v.state.MaxEpoch {
			v.logger.Info("voter: state changed", "holder", next.Holder, "holder_epoch", next.HolderEpoch,
				"max_epoch", next.MaxEpoch, "granted_to", req.Candidate, "granted", granted)
		}
		v.state = next
		v.expires = nextExpires
	}
	remaining := v.expires.Sub(now)
	if remaining < 0 || v.state.Holder == "" {
		remaining = 0
	}
	return LeaseResponse{
		Granted:     granted,
		Epoch:       v.state.MaxEpoch,
		Holder:      v.state.Holder,
		HolderEpoch: v.state.HolderEpoch,
		ExpiresInMS: remaining.Milliseconds(),
	}, nil
}

// grantable: the lease is free, already the candidate's, or expired and asked for at an epoch
// above its holder's (an epoch is granted to one candidate only).
func grantable(st voterState, expires, now time.Time, req LeaseRequest) bool {
	return st.Holder == "" || st.Holder == req.Candidate || (!now.Before(expires) && req.Epoch > st.HolderEpoch)
}

// Handler serves POST /v1/lease (a vote) and GET /v1/lease (the voter's state, for inspection).
func (v *Voter) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/lease", v.handleVote)
	mux.HandleFunc("GET /v1/lease", v.handleState)
	return mux
}

func (v *Voter) handleVote(w http.ResponseWriter, r *http.Request) {
	var req LeaseRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad lease request: " + err.Error()})
		return
	}
	resp, err := v.Vote(req)
	if err != nil {
		v.logger.Warn("voter: request failed", "candidate", req.Candidate, "epoch", req.Epoch, "err", err)
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (v *Voter) handleState(w http.ResponseWriter, _ *http.Request) {
	v.mu.Lock()
	st := v.state
	remaining := v.expires.Sub(v.now())
	v.mu.Unlock()
	if remaining < 0 || st.Holder == "" {
		remaining = 0
	}
	writeJSON(w, http.StatusOK, LeaseResponse{Epoch: st.MaxEpoch, Holder: st.Holder, HolderEpoch: st.HolderEpoch, ExpiresInMS: remaining.Milliseconds()})
}

// writeJSON writes v as a JSON response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
