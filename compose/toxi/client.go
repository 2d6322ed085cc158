// Package toxi is a small client for the WAN node's toxiproxy API. It exists (rather than the
// upstream client) because every call to our API is signed with the run's WAN key (peerauth) and
// time-boxed: a hung control plane must never hang a drill's undo.
package toxi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Client talks to one toxiproxy API.
type Client struct {
	// BaseURL is e.g. http://127.77.0.1:8474.
	BaseURL string
	// HTTP is the client used: one that signs with the run's WAN key (peerauth.Client).
	HTTP *http.Client
}

// Toxic is toxiproxy's toxic JSON.
type Toxic struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Stream     string         `json:"stream"`
	Toxicity   float32        `json:"toxicity"`
	Attributes map[string]any `json:"attributes"`
}

// Proxy is toxiproxy's proxy JSON.
type Proxy struct {
	Name     string  `json:"name"`
	Listen   string  `json:"listen"`
	Upstream string  `json:"upstream"`
	Enabled  bool    `json:"enabled"`
	Toxics   []Toxic `json:"toxics"`
}

// attempts is how often a call is tried when the connection fails (an EOF on a reused keep-alive
// connection the server closed, seen on a loaded machine in the middle of a drill's undo); an
// answer from the API, whatever its status, is never retried.
const attempts = 3

// call is do, tried again after a failed connection. Every call drill makes is safe to repeat:
// reads, deletes (a second finds nothing: done), enabling a proxy, and adding a toxic (a second
// finds it there: done, see AddToxic).
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var err error
	for i := range attempts {
		if err = c.do(ctx, method, path, in, out); err == nil {
			return nil
		}
		var apiErr *Error
		if errors.As(err, &apiErr) || ctx.Err() != nil || i == attempts-1 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(i+1) * 100 * time.Millisecond):
		}
	}
	return err
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("toxiproxy %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode >= 300 {
		return &Error{Status: resp.StatusCode, Msg: fmt.Sprintf("toxiproxy %s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(raw))}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("toxiproxy %s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

// Error is a non-2xx answer.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// NotFound reports whether err is a 404 from the API.
func NotFound(err error) bool {
	e, ok := err.(*Error)
	return ok && e.Status == http.StatusNotFound
}

// Proxies lists every proxy with its toxics.
func (c *Client) Proxies(ctx context.Context) (map[string]Proxy, error) {
	out := map[string]Proxy{}
	return out, c.call(ctx, http.MethodGet, "/proxies", nil, &out)
}

// AddToxic adds a toxic to a proxy. Toxic names are unique per fault, so a toxic of that name
// already there (409) is this one, added by an earlier attempt whose answer was lost.
func (c *Client) AddToxic(ctx context.Context, proxy string, t Toxic) error {
	if t.Toxicity == 0 {
		t.Toxicity = 1
	}
	err := c.call(ctx, http.MethodPost, "/proxies/"+url.PathEscape(proxy)+"/toxics", t, nil)
	if e, ok := err.(*Error); ok && e.Status == http.StatusConflict {
		return nil
	}
	return err
}

// RemoveToxic removes a toxic; a missing toxic is not an error (undo must be idempotent).
func (c *Client) RemoveToxic(ctx context.Context, proxy, name string) error {
	err := c.call(ctx, http.MethodDelete, "/proxies/"+url.PathEscape(proxy)+"/toxics/"+url.PathEscape(name), nil, nil)
	if NotFound(err) {
		return nil
	}
	return err
}

// SetEnabled enables or disables a proxy (disabled = connections refused and cut).
func (c *Client) SetEnabled(ctx context.Context, proxy string, enabled bool) error {
	return c.call(ctx, http.MethodPost, "/proxies/"+url.PathEscape(proxy), map[string]bool{"enabled": enabled}, nil)
}

// Version checks the API answers.
func (c *Client) Version(ctx context.Context) error {
	return c.call(ctx, http.MethodGet, "/version", nil, nil)
}
