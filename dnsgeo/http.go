package dnsgeo

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HTTPHandler serves the instance's side channel: GET /metrics (the registry given, which should
// be the one in Config.Registry) and GET /status (the _status lines as plain text).
func (s *Server) HTTPHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	if reg != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, strings.Join(s.Status(), "\n"))
	})
	return mux
}
