package gameday

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/drillworks/drill/drills/verdict"
)

// Webhook delivery defaults.
const (
	// DefaultWebhookBackoff is the first wait between two attempts; it doubles up to maxBackoff.
	DefaultWebhookBackoff = 500 * time.Millisecond
	maxBackoff            = 5 * time.Second
)

// EventFinished is the event of the payload posted at the end of a run.
const EventFinished = "gameday.finished"

// Payload is the JSON body posted to the webhook at the end of a run.
type Payload struct {
	// SchemaVersion and DrillVersion: what the fields mean, and the drill that posted them.
	SchemaVersion int    `json:"schema_version"`
	DrillVersion  string `json:"drill_version"`
	// Event is EventFinished.
	Event string `json:"event"`
	// Plan is the plan's name; RunID the run's id.
	Plan  string `json:"plan"`
	RunID string `json:"run_id"`
	// Verdict is the game day's verdict: pass, fail, error or aborted.
	Verdict verdict.Verdict `json:"verdict"`
	// Trigger is manual or schedule.
	Trigger string `json:"trigger"`
	// Start and End bound the run.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// ReportPath is the game day's index.html (absolute path); SummaryPath its summary.json.
	ReportPath  string `json:"report_path"`
	SummaryPath string `json:"summary_path"`
	// FailedChecks are every failed check of every drill.
	FailedChecks []FailedCheck `json:"failed_checks"`
	// Drills are the drills' verdicts and report directories.
	Drills []PayloadDrill `json:"drills"`
	// Error says why the run errored or was aborted.
	Error string `json:"error,omitempty"`
}

// PayloadDrill is one drill in the webhook payload.
type PayloadDrill struct {
	// Name is the drill's name; Verdict its verdict (or skipped).
	Name    string          `json:"name"`
	Verdict verdict.Verdict `json:"verdict"`
	// ReportDir is the drill's report directory (absolute); empty when it did not run.
	ReportDir string `json:"report_dir,omitempty"`
}

// Notifier posts JSON to a webhook with a timeout per attempt and bounded retries. Send never
// takes longer than Bound.
type Notifier struct {
	// URL receives the POST.
	URL string
	// Timeout bounds one attempt (default DefaultWebhookTimeout).
	Timeout time.Duration
	// Retries is how many times a failed attempt is retried: after a network error, a timeout,
	// a 5xx or a 429. Other answers are final.
	Retries int
	// Backoff is the first wait between attempts, doubling each time up to 5 s (default
	// DefaultWebhookBackoff).
	Backoff time.Duration
	// Client sends the requests (nil: a client without its own timeout; Timeout applies).
	Client *http.Client
	// Logger receives one line per failed attempt.
	Logger *slog.Logger
	// Headers are added to every request.
	Headers map[string]string
	// Secret, when set, signs every request: X-Drill-Timestamp is the Unix time and
	// X-Drill-Signature is "sha256=" and the hex HMAC-SHA256 of "<timestamp>.<body>" with it.
	Secret []byte
}

// Signature headers (see Notifier.Secret).
const (
	HeaderTimestamp = "X-Drill-Timestamp"
	HeaderSignature = "X-Drill-Signature"
)

// reservedHeader reports whether a header is drill's own, which a plan may not set.
func reservedHeader(name string) bool {
	switch http.CanonicalHeaderKey(name) {
	case "Content-Type", "User-Agent", "Content-Length", HeaderTimestamp, HeaderSignature:
		return true
	}
	return false
}

// Sign is the signature of body sent at timestamp (Unix seconds) with secret.
func Sign(secret []byte, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "%d.", timestamp)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Delivery is the outcome of Send.
type Delivery struct {
	// Delivered is true when the receiver answered 2xx.
	Delivered bool `json:"delivered"`
	// Attempts is how many requests were made.
	Attempts int `json:"attempts"`
	// Status is the last HTTP status (0: none received).
	Status int `json:"status,omitempty"`
	// Error is why the last attempt failed.
	Error string `json:"error,omitempty"`
	// Took is how long delivery took, in seconds.
	TookS float64 `json:"took_s"`
}

func (n *Notifier) timeout() time.Duration {
	if n.Timeout > 0 {
		return n.Timeout
	}
	return DefaultWebhookTimeout
}

func (n *Notifier) backoff(attempt int) time.Duration {
	b := n.Backoff
	if b <= 0 {
		b = DefaultWebhookBackoff
	}
	for range attempt {
		b *= 2
		if b >= maxBackoff {
			return maxBackoff
		}
	}
	return b
}

// Bound is the longest Send can take: every attempt timing out, plus the waits between them.
func (n *Notifier) Bound() time.Duration {
	total := time.Duration(n.Retries+1) * n.timeout()
	for i := range n.Retries {
		total += n.backoff(i) * 3 / 2 // the most jitter makes of it
	}
	return total
}

// Send posts body (marshalled as JSON) until it is delivered, a final answer comes, the retries
// run out, or ctx ends. It is bounded by Bound.
func (n *Notifier) Send(ctx context.Context, body any) Delivery {
	start := time.Now()
	d := Delivery{}
	logger := n.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	data, err := json.Marshal(body)
	if err != nil {
		d.Error = fmt.Sprintf("encode payload: %v", err)
		d.TookS = time.Since(start).Seconds()
		return d
	}
	client := n.Client
	if client == nil {
		client = &http.Client{}
	}
	ctx, cancel := context.WithTimeout(ctx, n.Bound())
	defer cancel()
	var retryAfter time.Duration // what the receiver asked for with its last answer
	for attempt := 0; attempt <= n.Retries; attempt++ {
		if attempt > 0 {
			wait := jitter(n.backoff(attempt - 1))
			if retryAfter > 0 {
				wait = retryAfter // the receiver said when (bounded by Bound through ctx)
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				d.Error = fmt.Sprintf("gave up: %v (last: %s)", ctx.Err(), d.Error)
				d.TookS = time.Since(start).Seconds()
				return d
			case <-t.C:
			}
		}
		d.Attempts++
		retry, after := n.attempt(ctx, client, data, &d)
		retryAfter = after
		if d.Delivered {
			d.TookS = time.Since(start).Seconds()
			return d
		}
		logger.Warn("webhook attempt failed", "url", n.URL, "attempt", d.Attempts, "status", d.Status, "error", d.Error)
		if !retry {
			break
		}
	}
	d.TookS = time.Since(start).Seconds()
	return d
}

// attempt makes one request; it reports whether a failure is worth retrying, and how long the
// receiver asked to wait first (Retry-After; 0: not said).
func (n *Notifier) attempt(ctx context.Context, client *http.Client, data []byte, d *Delivery) (bool, time.Duration) {
	actx, cancel := context.WithTimeout(ctx, n.timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, n.URL, bytes.NewReader(data))
	if err != nil {
		d.Error = fmt.Sprintf("request: %v", err)
		return false, 0
	}
	for k, v := range n.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "drill-gameday")
	if len(n.Secret) > 0 {
		ts := time.Now().Unix()
		req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
		req.Header.Set(HeaderSignature, Sign(n.Secret, ts, data))
	}
	resp, err := client.Do(req)
	if err != nil {
		d.Status, d.Error = 0, err.Error()
		return true, 0
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64*1024))
	resp.Body.Close()
	d.Status = resp.StatusCode
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		d.Delivered, d.Error = true, ""
		return false, 0
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout:
		d.Error = "receiver answered " + resp.Status
		return true, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	d.Error = "receiver answered " + resp.Status + " (not retried)"
	return false, 0
}

// parseRetryAfter reads a Retry-After header: seconds, or an HTTP date (RFC 9110 10.2.3); 0 when
// absent, unreadable or in the past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		return max(0, time.Duration(secs)*time.Second)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// jitter spreads a wait over [d/2, 3d/2), so that many senders do not retry in step.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d/2 + rand.N(d)
}
