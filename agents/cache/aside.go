package cache

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
)

// Source says how a read was served; the web tier reports it with every read, and the history
// records it.
type Source string

const (
	// Hit: the cache held a usable entry.
	Hit Source = "hit"
	// Miss: not cached; this read loaded from the database and filled the cache.
	Miss Source = "miss"
	// Shared: another read's database load answered this one (request coalescing).
	Shared Source = "shared"
	// Skip: cached, but older than the client's last write or filled under an older primary
	// epoch; this read loaded from the database (and refilled the cache).
	Skip Source = "skip"
	// Down: the cache did not answer; this read loaded from the database, nothing was filled.
	Down Source = "down"
)

// LoadsDatabase reports whether a read served so made a database read of its own.
func (s Source) LoadsDatabase() bool { return s == Miss || s == Skip || s == Down }

// Entry is a cached database answer: the value and the state it was read at.
type Entry struct {
	Value string `json:"v"`
	// Absent records that the key did not exist (negative caching: a hot key not yet written
	// must not send every read to the database).
	Absent bool `json:"a,omitempty"`
	// LSN is the serving database node's LSN when it answered: the entry reflects every write
	// up to it.
	LSN uint64 `json:"n"`
	// KeyLSN is the LSN of the write that produced Value.
	KeyLSN uint64 `json:"k"`
	// Epoch is the serving node's epoch when it answered.
	Epoch uint64 `json:"e"`
	// DBNode is the database node that answered.
	DBNode string `json:"d"`
}

// Loaded is one database read as the web tier made it: the status and body to answer with, and
// the entry to cache (a found value with status 200, or an absence with 404 and Entry.Absent;
// Entry's LSN and epoch are set either way).
type Loaded struct {
	Code  int
	Body  map[string]any
	Entry Entry
	Found bool
}

// Want is what a read needs of a cached entry.
type Want struct {
	// MinLSN and MinEpoch are the client's last write (read-your-writes); 0 = none.
	MinLSN, MinEpoch uint64
	// Epoch is the primary epoch the web node knows now (0 = none known). With all-regions
	// invalidation an entry filled under an older epoch is not served: it may hold a write the
	// failover discarded.
	Epoch uint64
	// Unsettled says the web node's view of the primary is in doubt (it is unhealthy: say its
	// primary lost the lease, and a newer epoch may exist that it has not heard of). With
	// all-regions invalidation the cache is then neither read nor filled.
	Unsettled bool
	// Refresh asks for the database's answer whatever the cache holds (the client sent
	// Cache-Control: no-cache); the answer is cached.
	Refresh bool
}

// Node is one cache node as a web node dials it.
type Node struct {
	Name, Region string
	// Addr is where this web node dials it: direct in its own region, a WAN link elsewhere.
	Addr string
}

// AsideConfig configures a web node's cache-aside reads.
type AsideConfig struct {
	// Region is the web node's region: reads go to its caches.
	Region string
	// Nodes are every region's cache nodes; a key lives on one node per region, by its hash.
	Nodes []Node
	// Password is the caches' requirepass.
	Password string
	// TTL is how long a filled entry lives.
	TTL time.Duration
	// Coalesce makes concurrent loads of one key in this web node one database read.
	Coalesce bool
	// AllRegions: a write deletes the key from every region's cache (the others asynchronously,
	// across the WAN) and entries of an older epoch are not served; otherwise only the own
	// region's cache is invalidated and entries live until their TTL.
	AllRegions bool
	// Logger receives invalidation failures.
	Logger *slog.Logger
}

// Aside is a web node's cache-aside client.
type Aside struct {
	cfg     AsideConfig
	own     []*redis.Client
	regions map[string][]*redis.Client // every region's clients, the own included
	group   singleflight.Group
	wg      sync.WaitGroup
}

// NewAside builds the clients; it dials nothing until used.
func NewAside(cfg AsideConfig) *Aside {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Aside{cfg: cfg, regions: map[string][]*redis.Client{}}
	for _, n := range cfg.Nodes {
		c := NewClient(n.Addr, cfg.Password)
		a.regions[n.Region] = append(a.regions[n.Region], c)
		if n.Region == cfg.Region {
			a.own = append(a.own, c)
		}
	}
	return a
}

// TTL is how long a filled entry lives.
func (a *Aside) TTL() time.Duration { return a.cfg.TTL }

// Enabled reports whether the web node's region has a cache.
func (a *Aside) Enabled() bool { return a != nil && len(a.own) > 0 }

// pick is the node of a region holding key.
func pick(clients []*redis.Client, key string) *redis.Client {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return clients[h.Sum32()%uint32(len(clients))]
}

// Get serves a read of key: from the region's cache when it holds a usable entry, else by load
// (coalesced with concurrent loads of the key when configured), filling the cache with what load
// found.
func (a *Aside) Get(ctx context.Context, key string, want Want, load func(context.Context) Loaded) (Loaded, Source) {
	if a.cfg.AllRegions && want.Unsettled {
		return load(ctx), Skip
	}
	c := pick(a.own, key)
	raw, err := c.Get(ctx, key).Bytes()
	source := Miss
	switch {
	case errors.Is(err, redis.Nil):
	case err != nil:
		source = Down
	default:
		var e Entry
		if json.Unmarshal(raw, &e) == nil {
			if !want.Refresh && usable(e, want, a.cfg.AllRegions) {
				return hitLoaded(key, e), Hit
			}
			source = Skip
		}
	}
	fill := func(ctx context.Context) Loaded {
		l := load(ctx)
		if source != Down && cacheable(l) {
			if b, err := json.Marshal(l.Entry); err == nil {
				_ = c.Set(ctx, key, b, a.cfg.TTL).Err()
			}
		}
		return l
	}
	if !a.cfg.Coalesce {
		return fill(ctx), source
	}
	// One load per key at a time in this node. The leader's context bounds the shared load;
	// a follower whose need the result does not meet loads on its own.
	v, _, shared := a.group.Do(key, func() (any, error) { return fill(ctx), nil })
	l := v.(Loaded)
	if !shared {
		// A copy even for the leader: the followers copy the same answer while the web tier
		// adds its fields to the leader's.
		return copyLoaded(l), source
	}
	if cacheable(l) && usable(l.Entry, want, false) {
		return copyLoaded(l), Shared
	}
	return fill(ctx), Skip
}

// usable reports whether a cached entry may answer a read that wants want.
func usable(e Entry, want Want, epochs bool) bool {
	if want.MinLSN > 0 && (e.LSN < want.MinLSN || e.Epoch < want.MinEpoch) {
		return false // older than the client's own last write
	}
	if epochs && want.Epoch > 0 && e.Epoch < want.Epoch {
		return false // filled under a primary since replaced: it may hold a discarded write
	}
	return true
}

// cacheable reports whether a database answer may be cached: a value, or the key's absence.
func cacheable(l Loaded) bool {
	return (l.Code == http.StatusOK && l.Found) || (l.Code == http.StatusNotFound && l.Entry.Absent)
}

// hitLoaded is the answer a cached entry of key gives, shaped like the database's.
func hitLoaded(key string, e Entry) Loaded {
	if e.Absent {
		return Loaded{Code: http.StatusNotFound, Entry: e, Body: map[string]any{
			"key": key, "found": false, "lsn": e.LSN, "epoch": e.Epoch, "db_node": e.DBNode}}
	}
	return Loaded{Code: http.StatusOK, Found: true, Entry: e, Body: map[string]any{
		"key": key, "found": true, "value": e.Value, "lsn": e.LSN, "key_lsn": e.KeyLSN, "epoch": e.Epoch, "db_node": e.DBNode,
	}}
}

// copyLoaded copies the body map: the web tier adds its own fields to each answer.
func copyLoaded(l Loaded) Loaded {
	body := make(map[string]any, len(l.Body)+4)
	for k, v := range l.Body {
		body[k] = v
	}
	l.Body = body
	return l
}

// Invalidate deletes key from the own region's cache before returning and, with all-regions
// invalidation, from every other region's cache in the background (a WAN round trip each; a
// failure is logged and the entry lives until its TTL or the next epoch). It reports whether
// the own region's delete succeeded.
func (a *Aside) Invalidate(ctx context.Context, key string) error {
	err := pick(a.own, key).Del(ctx, key).Err()
	if !a.cfg.AllRegions {
		return err
	}
	for region, clients := range a.regions {
		if region == a.cfg.Region {
			continue
		}
		c := pick(clients, key)
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := c.Del(ctx, key).Err(); err != nil {
				a.cfg.Logger.Warn("cache invalidation failed", "region", region, "key", key, "err", err)
			}
		}()
	}
	return err
}

// Close waits for background invalidations and closes the clients.
func (a *Aside) Close() {
	if a == nil {
		return
	}
	a.wg.Wait()
	for _, cs := range a.regions {
		for _, c := range cs {
			_ = c.Close()
		}
	}
}
