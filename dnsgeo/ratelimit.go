package dnsgeo

import (
	"net/netip"
	"sync"
	"time"
)

// Response-rate limiting (as BIND's RRL, simplified): a UDP query's source address can be forged,
// so an open DNS server can be made to send its answers (a _status TXT answer is 25-100 times the
// query) at someone else. Each client network (IPv4 /24, IPv6 /56) gets a token bucket of
// Config.ResponseRate answers per second with one second's worth of burst; a query over the rate
// gets no answer (a real resolver retries, over TCP if it must, and TCP is not limited by rate:
// its handshake proves the source). The table of networks is bounded: when it is full, networks
// whose bucket has refilled are forgotten, and if none has, the table starts over, which can only
// let a little more through, never block a client for good.

// maxRateEntries bounds the number of client networks tracked at once.
const maxRateEntries = 1 << 16

// rateLimiter is a token bucket per client network.
type rateLimiter struct {
	rate  float64 // tokens per second
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[netip.Prefix]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newRateLimiter(perSecond float64, now func() time.Time) *rateLimiter {
	return &rateLimiter{rate: perSecond, burst: max(perSecond, 1), now: now, buckets: map[netip.Prefix]*bucket{}}
}

// clientNetwork is the network a source address is limited as part of.
func clientNetwork(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 24
	if a.Is6() {
		bits = 56
	}
	p, _ := a.Prefix(bits)
	return p
}

// allow takes one token from the source's network; false means over the rate.
func (l *rateLimiter) allow(src netip.Addr) bool {
	key := clientNetwork(src)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxRateEntries {
			l.forgetFull(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// forgetFull drops the networks whose bucket has refilled (they would start full anyway); if that
// frees nothing, every network is forgotten.
func (l *rateLimiter) forgetFull(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxRateEntries {
		clear(l.buckets)
	}
}
