// Package ctlauth guards the agents' control endpoints: only a caller holding the plan's secret may
// inject faults.
package ctlauth

import (
	"crypto/subtle"
	"net/http"
)

// Require wraps next so that every request must carry "Authorization: Bearer <secret>".
func Require(secret string, next http.Handler) http.Handler {
	want := []byte("Bearer " + secret)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if secret == "" || subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
