// Package peerauth authenticates every HTTP call between drill's parts (drill and the nodes'
// control endpoints, the database API, lease votes, the WAN node's toxiproxy API) with the run's
// secret, without ever sending it. A request carries a timestamp, a nonce and an HMAC-SHA256 over
// them, the method, the URI, the hash of its body and the node it is for; the server refuses a
// request that is unsigned, stale, replayed, altered or (RequireNode) meant for another node, and
// signs its answer (status, body hash and the request's nonce), so the caller also knows the
// answer came from a holder of the secret and not from whatever bound the address first (another
// local user, while a node is down).
//
// Keys are derived per purpose from the run's secret (Derive), so a key that leaks from one
// service opens no other.
package peerauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Headers.
const (
	// RequestHeader carries a request's signature: "t=<unix ms>,n=<nonce>,s=<hmac>".
	RequestHeader = "X-Drill-Auth"
	// ReplyHeader carries an answer's signature: "s=<hmac>".
	ReplyHeader = "X-Drill-Auth-Reply"
	// ToHeader names the node a request is for (signed with it; see Transport.Audience).
	ToHeader = "X-Drill-To"
)

// Purposes of derived keys.
const (
	PurposeControl = "control" // the agents' control endpoints
	PurposeDB      = "db"      // the database API and lease votes (db nodes, witness)
	PurposeWAN     = "wan"     // the WAN node's toxiproxy API
	PurposeCache   = "cache"   // the cache nodes' redis password (CachePassword)
	PurposeQueue   = "queue"   // the queue nodes' NATS password (QueuePassword)
)

// CachePassword is the redis password of a run's cache nodes: derived from the run's secret, so
// it is never stored apart from the plan.
func CachePassword(secret string) string {
	return hex.EncodeToString(Derive(secret, PurposeCache))
}

// QueuePassword is the NATS password of a run's queue nodes (clients and leafnode links), derived
// from the run's secret like CachePassword.
func QueuePassword(secret string) string {
	return hex.EncodeToString(Derive(secret, PurposeQueue))
}

// Limits.
const (
	// MaxSkew is how far a request's timestamp may be from the server's clock. The clocks are
	// the host's (drill's clock faults act on the nodes' own clock, never on this one).
	MaxSkew = 30 * time.Second
	// MaxBody bounds a signed request body and a signed answer.
	MaxBody = 64 << 20
	// maxNonces bounds the replay cache; past it the oldest are dropped (they are stale by then
	// at any realistic rate: 1M requests in MaxSkew).
	maxNonces = 1 << 20
)

// Key is a derived signing key.
type Key []byte

// Derive derives the key of one purpose from the run's secret.
func Derive(secret, purpose string) Key {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("drill peerauth v1\x00" + purpose))
	return m.Sum(nil)
}

// Valid reports whether the key can sign (a zero key signs nothing and accepts nothing).
func (k Key) Valid() bool { return len(k) > 0 }

func (k Key) mac(parts ...string) string {
	m := hmac.New(sha256.New, k)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func bodyHash(b []byte) string {
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ErrUnsigned is returned for an answer without a valid signature.
var ErrUnsigned = errors.New("peerauth: the answer is not signed with the run's key (an impostor, or another run, answered)")

// Transport signs requests and verifies answers; Base (nil: http.DefaultTransport) carries them.
type Transport struct {
	Key  Key
	Base http.RoundTripper
	// Audience names the node a request is for, from the address it goes to ("" or nil: none),
	// unless the request names it already (For). The name is signed with the request, so a node
	// that requires its own name (RequireNode) refuses a request captured on its way to another
	// node and replayed to it.
	Audience func(hostport string) string
	// now is the clock (tests).
	now func() time.Time
}

// Client is an http.Client whose calls are signed with key and time-boxed to timeout.
func Client(key Key, timeout time.Duration, base http.RoundTripper) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &Transport{Key: key, Base: base}}
}

// For names the node req is for (signed with it by a Transport; a node that requires its name
// refuses a request signed for another) and returns req.
func For(req *http.Request, node string) *http.Request {
	req.Header.Set(ToHeader, node)
	return req
}

// ClientFor is Client whose requests also name the node they are for (Transport.Audience).
func ClientFor(key Key, timeout time.Duration, audience func(hostport string) string) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &Transport{Key: key, Audience: audience}}
}

// RoundTrip signs req and verifies the answer's signature.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.Key.Valid() {
		return nil, errors.New("peerauth: no key to sign with")
	}
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(req.Body, MaxBody+1))
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("peerauth: read request body: %w", err)
		}
		if len(b) > MaxBody {
			return nil, fmt.Errorf("peerauth: request body over %d bytes", MaxBody)
		}
		body = b
	}
	nonceRaw := make([]byte, 16)
	if _, err := rand.Read(nonceRaw); err != nil {
		return nil, err
	}
	nonce := base64.RawURLEncoding.EncodeToString(nonceRaw)
	now := time.Now
	if t.now != nil {
		now = t.now
	}
	ts := strconv.FormatInt(now().UnixMilli(), 10)
	r2 := req.Clone(req.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	to := req.Header.Get(ToHeader) // a caller that knows the node names it (For)
	if to == "" && t.Audience != nil {
		to = t.Audience(req.URL.Host)
	}
	if to != "" {
		r2.Header.Set(ToHeader, to)
	} else {
		r2.Header.Del(ToHeader)
	}
	r2.Header.Set(RequestHeader, "t="+ts+",n="+nonce+",s="+t.Key.mac("request", req.Method, req.URL.RequestURI(), ts, nonce, bodyHash(body), to))
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(r2)
	if err != nil {
		return nil, err
	}
	reply, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("peerauth: read answer: %w", err)
	}
	want := "s=" + t.Key.mac("reply", nonce, strconv.Itoa(resp.StatusCode), bodyHash(reply))
	if len(reply) > MaxBody || !hmac.Equal([]byte(resp.Header.Get(ReplyHeader)), []byte(want)) {
		return nil, fmt.Errorf("%w: %s %s answered %s", ErrUnsigned, req.Method, req.URL.Redacted(), resp.Status)
	}
	resp.Body = io.NopCloser(bytes.NewReader(reply))
	resp.ContentLength = int64(len(reply))
	return resp, nil
}

// Server checks signed requests for one key and remembers the nonces it saw.
type Server struct {
	key Key
	// name, when set, is the node this server is: a request must be signed for it (ToHeader).
	name string
	now  func() time.Time

	mu     sync.Mutex
	nonces map[string]time.Time // nonce → when it stops mattering
	order  []string
}

// NewServer returns a checker for key.
func NewServer(key Key) *Server {
	return &Server{key: key, now: time.Now, nonces: map[string]time.Time{}}
}

// Require wraps next: a request must be signed with key (else 401 and next never runs); the
// answer is signed.
func Require(key Key, next http.Handler) http.Handler { return NewServer(key).Wrap(next) }

// RequireNode is Require for node name: a request must also be signed for that node (its
// ToHeader), so that one captured on its way to another node of the run is refused here.
func RequireNode(key Key, name string, next http.Handler) http.Handler {
	s := NewServer(key)
	s.name = name
	return s.Wrap(next)
}

// Wrap wraps next as Require does, with this server's replay cache.
func (s *Server) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nonce, status, err := s.verify(r)
		if err != nil {
			http.Error(w, "unauthorized: "+err.Error(), status)
			return
		}
		rec := &recorder{header: http.Header{}, status: http.StatusOK, under: w}
		next.ServeHTTP(rec, r)
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.Header().Set(ReplyHeader, "s="+s.key.mac("reply", nonce, strconv.Itoa(rec.status), bodyHash(rec.body.Bytes())))
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
	})
}

// verify checks a request's signature and returns its nonce.
func (s *Server) verify(r *http.Request) (string, int, error) {
	if !s.key.Valid() {
		return "", http.StatusUnauthorized, errors.New("this endpoint has no key")
	}
	fields := map[string]string{}
	for _, part := range strings.Split(r.Header.Get(RequestHeader), ",") {
		if k, v, ok := strings.Cut(part, "="); ok {
			fields[k] = v
		}
	}
	ts, nonce, sig := fields["t"], fields["n"], fields["s"]
	if ts == "" || nonce == "" || sig == "" {
		return "", http.StatusUnauthorized, errors.New("unsigned request")
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", http.StatusUnauthorized, errors.New("bad timestamp")
	}
	now := s.now()
	if d := now.Sub(time.UnixMilli(ms)); d > MaxSkew || d < -MaxSkew {
		return "", http.StatusUnauthorized, fmt.Errorf("timestamp %s off the server's clock", d.Round(time.Second))
	}
	var body []byte
	if r.Body != nil {
		body, err = io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
		r.Body.Close()
		if err != nil {
			return "", http.StatusBadRequest, errors.New("read body")
		}
		if len(body) > MaxBody {
			return "", http.StatusRequestEntityTooLarge, errors.New("body too large")
		}
	}
	to := r.Header.Get(ToHeader)
	want := s.key.mac("request", r.Method, r.URL.RequestURI(), ts, nonce, bodyHash(body), to)
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return "", http.StatusUnauthorized, errors.New("bad signature")
	}
	if s.name != "" && to != s.name {
		return "", http.StatusUnauthorized, fmt.Errorf("request signed for node %q, this is %s", to, s.name)
	}
	if !s.fresh(nonce, now) {
		return "", http.StatusUnauthorized, errors.New("replayed request")
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return nonce, 0, nil
}

// fresh records a nonce and reports whether it was new.
func (s *Server) fresh(nonce string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.order) > 0 && (len(s.order) >= maxNonces || now.After(s.nonces[s.order[0]])) {
		delete(s.nonces, s.order[0])
		s.order = s.order[1:]
	}
	if _, seen := s.nonces[nonce]; seen {
		return false
	}
	s.nonces[nonce] = now.Add(2 * MaxSkew)
	s.order = append(s.order, nonce)
	return true
}

// recorder buffers an answer so it can be signed. Unwrap gives http.ResponseController the
// connection's writer, so a handler's write deadline holds for the signed answer too.
type recorder struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
	under  http.ResponseWriter
}

// Unwrap returns the writer the signed answer goes to.
func (r *recorder) Unwrap() http.ResponseWriter { return r.under }

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if !r.wrote {
		r.status, r.wrote = status, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	if r.body.Len()+len(b) > MaxBody {
		return 0, errors.New("peerauth: answer over the size limit")
	}
	return r.body.Write(b)
}
