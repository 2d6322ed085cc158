package check

import (
	"strings"
	"testing"

	"github.com/drillworks/drill/drills/history"
	"github.com/drillworks/drill/drills/verdict"
)

func TestLinearizable(t *testing.T) {
	cfg := Config{Budgets: Budgets{BudgetNonLinearizableKeys: 0}}
	cases := []struct {
		name    string
		build   func(h *hist)
		illegal int
	}{
		{"read after the write sees it", func(h *hist) {
			h.write(1, "us", "k", 0, history.TypeOK, 1, "us-db", 1)
			h.read(2, "eu", "k", 2, history.TypeOK, 3, true, 1, "v-k")
		}, 0},
		{"read after the write's ack misses it (a lagging replica)", func(h *hist) {
			h.write(1, "us", "k", 0, history.TypeOK, 1, "us-db", 1)
			h.read(2, "eu", "k", 2, history.TypeOK, 3, false, 0, "")
		}, 1},
		{"read concurrent with the write may miss it", func(h *hist) {
			h.write(1, "us", "k", 0, history.TypeOK, 3, "us-db", 1)
			h.read(2, "eu", "k", 1, history.TypeOK, 2, false, 0, "")
		}, 0},
		{"a value seen, then not seen again", func(h *hist) {
			h.write(1, "us", "k", 0, history.TypeOK, 5, "us-db", 1)
			h.read(2, "eu", "k", 1, history.TypeOK, 2, true, 1, "v-k")
			h.read(3, "eu", "k", 3, history.TypeOK, 4, false, 0, "")
		}, 1},
		{"an indeterminate write may take effect late", func(h *hist) {
			h.write(1, "us", "k", 0, history.TypeInfo, 1, "", 0)
			h.read(2, "eu", "k", 2, history.TypeOK, 3, false, 0, "")
			h.read(3, "eu", "k", 4, history.TypeOK, 5, true, 1, "v-k")
		}, 0},
		{"an acknowledged write missing from the final read", func(h *hist) {
			h.write(1, "us", "k", 0, history.TypeOK, 1, "us-db", 1)
			h.final("k", "", false, 10)
		}, 1},
		{"a failed write never took effect", func(h *hist) {
			h.write(1, "us", "k", 0, history.TypeFail, 1, "", 0)
			h.read(2, "eu", "k", 2, history.TypeOK, 3, true, 1, "v-k")
		}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := &hist{}
			c.build(h)
			r, ev := Linearizable(h.build(), cfg)
			if int(r.Measured) != c.illegal || ev == nil || ev.Keys != 1 {
				t.Fatalf("measured %v, evidence %+v, want %d illegal of 1 key (%s)", r.Measured, ev, c.illegal, r.Detail)
			}
			want := verdict.Pass
			if c.illegal > 0 {
				want = verdict.Fail
				if name, html := ev.Attachment(); name != FileLinearizability || !strings.Contains(string(html), "<html") {
					t.Fatalf("no visualization for an illegal key: %q, %d bytes", name, len(html))
				}
			}
			if r.Verdict != want {
				t.Fatalf("verdict %s, want %s (%s)", r.Verdict, want, r.Detail)
			}
		})
	}
	if r, _ := Linearizable(nil, cfg); r.Verdict != verdict.Unknown {
		t.Fatalf("empty history: %+v, want unknown", r)
	}
}
