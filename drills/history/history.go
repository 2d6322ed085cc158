// Package history is the recorded history of a drill, in the style of Jepsen: every client
// operation is an "invoke" entry followed by its completion ("ok", "fail" or "info"), and faults,
// DNS answers, replication-lag samples, primary changes, the final reads after heal and the
// database nodes' logs at the end are recorded on the same timeline. A history is written as JSON lines (history.jsonl) while the
// drill runs (Recorder) and read back for checking (Read).
//
// Completion types follow Jepsen: "ok" means the operation definitely happened, "fail" that it
// definitely did not, "info" that it may or may not have (timeout, crash). A process whose
// operation ended "info" never issues another one: a new process id takes over.
package history

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/drillworks/drill/compose/fault"
)

// Op types.
const (
	// TypeInvoke starts a client operation.
	TypeInvoke = "invoke"
	// TypeOK completes a client operation that definitely happened.
	TypeOK = "ok"
	// TypeFail completes a client operation that definitely did not happen.
	TypeFail = "fail"
	// TypeInfo completes a client operation whose outcome is unknown (timeout, crash).
	TypeInfo = "info"
	// TypeFault marks a fault's start or stop (F is FStart or FStop).
	TypeFault = "fault"
	// TypeDNS is a DNS answer observed by a client.
	TypeDNS = "dns"
	// TypeLag is a replication-lag sample of one database node.
	TypeLag = "lag"
	// TypeEpoch is an observed change of primary or epoch.
	TypeEpoch = "epoch"
	// TypeFinal is the final read of one key after heal.
	TypeFinal = "final"
	// TypeLog is one database node's whole log after the final read (Node, Log).
	TypeLog = "log"
	// TypeQueue is a sample of one region's queue (Region, Node, Backlog).
	TypeQueue = "queue"
)

// Op functions.
const (
	// FWrite is a client write (PUT of a unique key).
	FWrite = "write"
	// FRead is a client read.
	FRead = "read"
	// FEnqueue is a client publishing a job (POST /jobs; Key is the job id): ok once the queue
	// acknowledged it.
	FEnqueue = "enqueue"
	// FStart starts a fault.
	FStart = "start"
	// FStop stops (heals) a fault.
	FStop = "stop"
)

// CacheSource is how a read was served in a region with a cache (Op.Cache); the values are
// agents/cache.Source's.
type CacheSource string

// Cache sources.
const (
	// CacheHit: the cache held a usable entry; no database read.
	CacheHit CacheSource = "hit"
	// CacheMiss: not cached; the read loaded from the database and filled the cache.
	CacheMiss CacheSource = "miss"
	// CacheShared: another read's database load answered it (request coalescing).
	CacheShared CacheSource = "shared"
	// CacheSkip: the cached entry was too old for the read; it loaded from the database.
	CacheSkip CacheSource = "skip"
	// CacheDown: the cache did not answer; the read loaded from the database.
	CacheDown CacheSource = "down"
)

// LoadsDatabase reports whether a read so served made a database read of its own.
func (s CacheSource) LoadsDatabase() bool { return s == CacheMiss || s == CacheSkip || s == CacheDown }

// Op is one entry of the history. Zero-valued fields are left out of the JSON line and read back
// as zero. Which fields are set depends on Type (see the field comments).
type Op struct {
	// Index is the entry's position in the history, assigned by the Recorder; it is the
	// authoritative order (times from different goroutines may tie).
	Index int64 `json:"index"`
	// Type is invoke, ok, fail or info for client ops; fault, dns, lag, epoch or final otherwise.
	Type string `json:"type"`
	// F is write, read or enqueue for client ops, start or stop for faults.
	F string `json:"f,omitempty"`
	// Process is the client id of client and dns ops; meaningless (0) for the others.
	Process int `json:"process"`
	// ClientRegion is the region the client is near (client and dns ops).
	ClientRegion string `json:"client_region,omitempty"`
	// Key is the key written or read (client and final ops).
	Key string `json:"key,omitempty"`
	// Value is the value written (write invoke and completion) or read (read completion, final).
	Value string `json:"value,omitempty"`
	// Time is when the entry happened.
	Time time.Time `json:"time"`
	// DNSAnswer is the addresses of a DNS answer (dns ops).
	DNSAnswer []string `json:"dns_answer,omitempty"`
	// DNSRegion is the region the DNS answer points to; empty when the lookup failed.
	DNSRegion string `json:"dns_region,omitempty"`
	// WebNode is the web node that served the request.
	WebNode string `json:"web_node,omitempty"`
	// DBNode is the database node that served the request (for an acknowledged write: the
	// primary that accepted it).
	DBNode string `json:"db_node,omitempty"`
	// Epoch is the serving node's epoch (client ops) or the new epoch (epoch ops).
	Epoch uint64 `json:"epoch,omitempty"`
	// LSN is the serving node's LSN: for an acknowledged write, the write's own LSN.
	LSN uint64 `json:"lsn,omitempty"`
	// KeyLSN is the LSN of the write that produced the value a read returned.
	KeyLSN uint64 `json:"key_lsn,omitempty"`
	// MinLSN is the min_lsn a read asked for (read-your-writes).
	MinLSN uint64 `json:"min_lsn,omitempty"`
	// Found is whether a read (or final read) found the key.
	Found bool `json:"found,omitempty"`
	// Cache is how a read was served in a region with a cache: hit, miss, shared, skip or down
	// (agents/cache.Source); empty without a cache.
	Cache CacheSource `json:"cache,omitempty"`
	// CacheTTLMS is the cache's TTL in milliseconds, as the web tier reported it with a read
	// served through a cache.
	CacheTTLMS int64 `json:"cache_ttl_ms,omitempty"`
	// Error is the error a client op or lookup saw.
	Error string `json:"error,omitempty"`
	// Fault is the fault id, e.g. blackhole:us-east (fault ops).
	Fault string `json:"fault,omitempty"`
	// FaultKind is the fault's kind (fault ops).
	FaultKind fault.Kind `json:"fault_kind,omitempty"`
	// FaultParams are a fault's settings in words, e.g. "+150ms ±20ms" or "30% loss" (fault
	// start ops of kinds that have settings).
	FaultParams string `json:"fault_params,omitempty"`
	// Region is a fault's target region (empty for a fault between several regions, whose id
	// names them, or one on the whole WAN), the sampled node's region (lag, epoch ops), or the
	// region of the web node that served a read.
	Region string `json:"region,omitempty"`
	// Node is a fault's target node, the sampled node (lag) or the new primary (epoch).
	Node string `json:"node,omitempty"`
	// LagMS is the replication lag in milliseconds (lag ops).
	LagMS int64 `json:"lag_ms,omitempty"`
	// Backlog is how many jobs a region's queue held, published and not yet acknowledged by a
	// worker (queue ops).
	Backlog uint64 `json:"backlog,omitempty"`
	// Log is a database node's log, LSN by LSN (log ops).
	Log []LogEntry `json:"log,omitempty"`
}

// LogEntry is one entry of a node's log: its LSN, the epoch of the primary that wrote it and the
// key it wrote (with unique keys the key names the write; with hot keys, LSN and epoch do).
type LogEntry struct {
	LSN   uint64 `json:"l"`
	Epoch uint64 `json:"e"`
	Key   string `json:"k"`
}

// IsClient reports whether op is a client operation entry (invoke or a completion).
func (op Op) IsClient() bool {
	return op.Type == TypeInvoke || IsCompletion(op.Type)
}

// IsCompletion reports whether typ completes a client operation.
func IsCompletion(typ string) bool {
	return typ == TypeOK || typ == TypeFail || typ == TypeInfo
}

// Recorder appends ops to a history: it numbers them, writes each as one JSON line and keeps
// them in memory. It is safe for concurrent use.
type Recorder struct {
	mu   sync.Mutex
	w    io.Writer
	ops  []Op
	next int64
	err  error
}

// NewRecorder returns a Recorder writing JSON lines to w (nil: keep the history in memory only).
func NewRecorder(w io.Writer) *Recorder {
	return &Recorder{w: w}
}

// Append numbers op (Index), stamps it with the current time if Time is zero, writes it and
// keeps it. It returns the op as recorded. A write error is returned (and remembered by Err); the
// op is kept in memory anyway, so checking can still proceed.
func (r *Recorder) Append(op Op) (Op, error) {
	if op.Time.IsZero() {
		op.Time = time.Now()
	}
	op.DNSAnswer = append([]string(nil), op.DNSAnswer...)
	r.mu.Lock()
	defer r.mu.Unlock()
	op.Index = r.next
	r.next++
	r.ops = append(r.ops, op)
	if r.w == nil {
		return op, nil
	}
	line, err := json.Marshal(op)
	if err == nil {
		_, err = r.w.Write(append(line, '\n'))
	}
	if err != nil {
		err = fmt.Errorf("record op %d: %w", op.Index, err)
		if r.err == nil {
			r.err = err
		}
		return op, err
	}
	return op, nil
}

// Ops returns a copy of the history recorded so far, in Index order.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Op, len(r.ops))
	copy(out, r.ops)
	return out
}

// Err is the first write error, if any.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// maxLine bounds one JSON line of a history file.
const maxLine = 1 << 20

// Read reads a JSON-lines history. Blank lines are skipped; unknown fields, unknown types and
// malformed lines are errors naming the line. The ops are returned sorted by Index.
func Read(r io.Reader) ([]Op, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), maxLine)
	var ops []Op
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.DisallowUnknownFields()
		var op Op
		if err := dec.Decode(&op); err != nil {
			return nil, fmt.Errorf("history line %d: %w", line, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("history line %d: more than one JSON value", line)
		}
		if !knownType(op.Type) {
			return nil, fmt.Errorf("history line %d: unknown op type %q", line, op.Type)
		}
		ops = append(ops, op)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	return Sorted(ops), nil
}

func knownType(t string) bool {
	switch t {
	case TypeInvoke, TypeOK, TypeFail, TypeInfo, TypeFault, TypeDNS, TypeLag, TypeEpoch, TypeFinal, TypeLog, TypeQueue:
		return true
	}
	return false
}

// Sorted returns ops sorted by Index (ties keep their order): ops itself when it already is (a
// recorded or read history always is, and copying a million entries per checker is what made
// judging slow), else a sorted copy. Callers must not modify the result.
func Sorted(ops []Op) []Op {
	if slices.IsSortedFunc(ops, func(a, b Op) int { return cmp.Compare(a.Index, b.Index) }) {
		return ops
	}
	out := make([]Op, len(ops))
	copy(out, ops)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out
}

// Span is the time of the earliest and the latest op (zero times for an empty history).
func Span(ops []Op) (first, last time.Time) {
	for _, op := range ops {
		if first.IsZero() || op.Time.Before(first) {
			first = op.Time
		}
		if last.IsZero() || op.Time.After(last) {
			last = op.Time
		}
	}
	return first, last
}

// ClientRegions lists the distinct client regions of client and dns ops, sorted.
func ClientRegions(ops []Op) []string {
	seen := map[string]bool{}
	for _, op := range ops {
		if (op.IsClient() || op.Type == TypeDNS) && op.ClientRegion != "" {
			seen[op.ClientRegion] = true
		}
	}
	return sortedKeys(seen)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
