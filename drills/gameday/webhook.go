package gameday

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
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
		total += n.backoff(i)
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
	for attempt := 0; attempt <= n.Retries; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(n.backoff(attempt - 1))
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
		retry := n.attempt(ctx, client, data, &d)
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

// attempt makes one request; it reports whether a failure is worth retrying.
func (n *Notifier) attempt(ctx context.Context, client *http.Client, data []byte, d *Delivery) bool {
	actx, cancel := context.WithTimeout(ctx, n.timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, n.URL, bytes.NewReader(data))
	if err != nil {
		d.Error = fmt.Sprintf("request: %v", err)
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "drill-gameday")
	resp, err := client.Do(req)
	if err != nil {
		d.Status, d.Error = 0, err.Error()
		return true
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64*1024))
	resp.Body.Close()
	d.Status = resp.StatusCode
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		d.Delivered, d.Error = true, ""
		return false
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout:
		d.Error = "receiver answered " + resp.Status
		return true
	}
	d.Error = "receiver answered " + resp.Status + " (not retried)"
	return false
}
