package wan

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServeStandalone runs a plain toxiproxy from a config file: the configured proxy carries
// traffic, the API lists it and adds a toxic, and cancelling stops everything.
func TestServeStandalone(t *testing.T) {
	upstream, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer upstream.Close()
	go func() {
		for {
			c, err := upstream.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }() // echo
		}
	}()
	proxyAddr, apiAddr := freeAddr(t), freeAddr(t)
	cfg := filepath.Join(t.TempDir(), "proxies.json")
	js := `[{"name":"echo","listen":"` + proxyAddr + `","upstream":"` + upstream.Addr().String() + `"}]`
	if err := os.WriteFile(cfg, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	const token = "standalone-test-token-0123456789"
	go func() {
		done <- ServeStandalone(ctx, StandaloneConfig{APIListen: apiAddr, ConfigFile: cfg, Token: token})
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ServeStandalone: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("ServeStandalone did not stop after cancel")
		}
	}()

	// Poll the API until it answers (bounded).
	var proxies map[string]struct {
		Listen   string `json:"listen"`
		Upstream string `json:"upstream"`
		Enabled  bool   `json:"enabled"`
	}
	api := func(method, path, body string) (*http.Response, error) {
		req, _ := http.NewRequest(method, "http://"+apiAddr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		return http.DefaultClient.Do(req)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := api(http.MethodGet, "/proxies", "")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&proxies)
			resp.Body.Close()
			if err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("toxiproxy API never answered: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if p, ok := proxies["echo"]; !ok || !p.Enabled || p.Upstream != upstream.Addr().String() {
		t.Fatalf("proxies = %+v, want echo enabled to %s", proxies, upstream.Addr())
	}
	// Without the token (or with another), the API changes nothing.
	for _, auth := range []string{"", "Bearer wrong-token-0123456789"} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+apiAddr+"/proxies/echo", strings.NewReader(`{"enabled":false}`))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("API call with %q: HTTP %d, want 401", auth, resp.StatusCode)
		}
	}

	// Traffic flows through the proxy; a latency toxic added through the API slows it.
	roundTrip := func() time.Duration {
		t.Helper()
		c, err := net.DialTimeout("tcp", proxyAddr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("echo through the proxy: %q, %v", buf, err)
		}
		return time.Since(start)
	}
	_ = roundTrip()
	resp, err := api(http.MethodPost, "/proxies/echo/toxics",
		`{"name":"slow","type":"latency","stream":"downstream","attributes":{"latency":200}}`)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("add toxic: HTTP %d", resp.StatusCode)
	}
	if d := roundTrip(); d < 200*time.Millisecond {
		t.Fatalf("round trip with a 200 ms latency toxic took %v", d)
	}
}

func TestServeStandaloneBadConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "proxies.json")
	if err := os.WriteFile(cfg, []byte(`[{"name":"x"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	const token = "standalone-test-token-0123456789"
	err := ServeStandalone(context.Background(), StandaloneConfig{APIListen: freeAddr(t), ConfigFile: cfg, Token: token})
	if err == nil || !strings.Contains(err.Error(), cfg) || !strings.Contains(err.Error(), "upstream") {
		t.Fatalf("bad config: %v, want an error naming the file and the missing upstream", err)
	}
	if err := ServeStandalone(context.Background(), StandaloneConfig{APIListen: freeAddr(t), ConfigFile: cfg + ".missing", Token: token}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing config: %v", err)
	}
	// No token, or a public address without saying so: refused before anything listens.
	if err := ServeStandalone(context.Background(), StandaloneConfig{APIListen: freeAddr(t)}); err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("no token: %v", err)
	}
	if err := ServeStandalone(context.Background(), StandaloneConfig{APIListen: "0.0.0.0:0", Token: token}); err == nil || !strings.Contains(err.Error(), "allow-public") {
		t.Fatalf("public listen: %v", err)
	}
}
