package db

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/drillworks/drill/agents/peerauth"
)

// Client is a small typed client of a db node's API, for the web tier and the CLI.
type Client struct {
	// BaseURL is the node's base URL, e.g. http://127.77.1.20:7000.
	BaseURL string
	// HTTP is the HTTP client; nil uses http.DefaultClient.
	HTTP *http.Client
	// Node is the node's name, signed into every request (a node refuses a request signed for
	// another).
	Node string
}

// WriteResult is a successful PUT.
type WriteResult struct {
	Key string `json:"key"`
	// LSN is the write's log sequence number.
	LSN uint64 `json:"lsn"`
	// Epoch is the epoch it was written in.
	Epoch uint64 `json:"epoch"`
	// Node and Region name the primary that acknowledged it.
	Node   string `json:"node"`
	Region string `json:"region"`
}

// ReadResult is a GET answer. Found is false (and the error nil) for a missing key.
type ReadResult struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	Found bool   `json:"found"`
	// KeyLSN is the LSN that wrote the value.
	KeyLSN uint64 `json:"key_lsn"`
	// LSN is the node's applied LSN when it answered.
	LSN uint64 `json:"lsn"`
	// Epoch, Node and Region describe the node that answered.
	Epoch  uint64 `json:"epoch"`
	Node   string `json:"node"`
	Region string `json:"region"`
}

// APIError is a non-success answer from a node.
type APIError struct {
	StatusCode int `json:"-"`
	// Message is the error: "not primary", "no lease", "semi-sync timeout", "behind", ...
	Message string `json:"error"`
	// Primary is the primary the node follows (with "not primary").
	Primary string `json:"primary,omitempty"`
	// Outcome is "unknown" when the write may or may not have been kept.
	Outcome string `json:"outcome,omitempty"`
	// WriteLSN is the LSN an unknown-outcome write got.
	WriteLSN uint64 `json:"write_lsn,omitempty"`
	// Node, Region, Epoch and LSN describe the node that answered.
	Node   string `json:"node"`
	Region string `json:"region"`
	Epoch  uint64 `json:"epoch"`
	LSN    uint64 `json:"lsn"`
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("db %s: %d %s", e.Node, e.StatusCode, e.Message)
	if e.Primary != "" {
		s += " (primary " + e.Primary + ")"
	}
	if e.Outcome != "" {
		s += " (outcome " + e.Outcome + ")"
	}
	return s
}

// Put writes key=value on the node (it must be the primary).
func (c *Client) Put(ctx context.Context, key, value string) (WriteResult, error) {
	var res WriteResult
	err := c.do(ctx, http.MethodPut, "/v1/kv/"+url.PathEscape(key), strings.NewReader(value), &res, http.StatusOK)
	return res, err
}

// Get reads key; with minLSN > 0 the node first waits (its default 500 ms) to have applied minLSN,
// else answers an APIError "behind" (409).
func (c *Client) Get(ctx context.Context, key string, minLSN uint64) (ReadResult, error) {
	return c.GetWait(ctx, key, minLSN, 0)
}

// GetWait is Get with an explicit wait for minLSN (0 = the node's default, at most 5 s).
func (c *Client) GetWait(ctx context.Context, key string, minLSN uint64, wait time.Duration) (ReadResult, error) {
	return c.GetAfter(ctx, key, minLSN, 0, wait)
}

// GetAfter is GetWait for a write acknowledged at minLSN in epoch minEpoch: the node serves the
// read only once its log provably holds that write (see Node.holdsLocked).
func (c *Client) GetAfter(ctx context.Context, key string, minLSN, minEpoch uint64, wait time.Duration) (ReadResult, error) {
	q := url.Values{}
	if minLSN > 0 {
		q.Set("min_lsn", formatUint(minLSN))
	}
	if minEpoch > 0 {
		q.Set("min_epoch", formatUint(minEpoch))
	}
	if wait > 0 {
		q.Set("wait_ms", formatUint(uint64(wait.Milliseconds())))
	}
	path := "/v1/kv/" + url.PathEscape(key)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var res ReadResult
	err := c.do(ctx, http.MethodGet, path, nil, &res, http.StatusOK, http.StatusNotFound)
	return res, err
}

// Log fetches the node's whole log, a page at a time.
func (c *Client) Log(ctx context.Context) ([]LogEntry, error) {
	var out []LogEntry
	for from := uint64(1); ; {
		var page LogPage
		if err := c.do(ctx, http.MethodGet, "/v1/log?from="+formatUint(from), nil, &page, http.StatusOK); err != nil {
			return nil, err
		}
		out = append(out, page.Entries...)
		if len(page.Entries) == 0 || from+uint64(len(page.Entries)) > page.LastLSN {
			return out, nil
		}
		from += uint64(len(page.Entries))
	}
}

// Status fetches the node's State.
func (c *Client) Status(ctx context.Context) (State, error) {
	var st State
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st, http.StatusOK)
	return st, err
}

// do sends one request and decodes a success answer (any of okStatus) into out, or returns an *APIError.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader, out any, okStatus ...int) error {
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return fmt.Errorf("db request %s %s: %w", method, path, err)
	}
	if c.Node != "" {
		peerauth.For(req, c.Node)
	}
	res, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("db request %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("db response %s %s: %w", method, path, err)
	}
	for _, ok := range okStatus {
		if res.StatusCode == ok {
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("decode db response %s %s: %w", method, path, err)
			}
			return nil
		}
	}
	apiErr := &APIError{StatusCode: res.StatusCode}
	if err := json.Unmarshal(data, apiErr); err != nil || apiErr.Message == "" {
		apiErr.Message = strings.TrimSpace(string(data))
	}
	return apiErr
}
