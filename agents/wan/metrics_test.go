package wan

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/drillworks/drill/topology"
)

// The WAN node's /metrics is readable without a signature (Prometheus scrapes it); every other
// route of its toxiproxy API still needs one.
func TestMetricsOpenAPISigned(t *testing.T) {
	p := &topology.Plan{Topology: topology.Default(), Secret: "wan-test-secret"}
	s, err := New(Config{Plan: p})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv := httptest.NewServer(s.http.Handler)
	defer srv.Close()
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/metrics", 200},
		{"GET", "/proxies", 401},
		{"POST", "/proxies", 401},
		{"POST", "/metrics", 401},
		{"GET", "/metrics/../proxies", 401},
	} {
		req := httptest.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader("{}"))
		req.RequestURI = ""
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s unsigned: HTTP %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
}
