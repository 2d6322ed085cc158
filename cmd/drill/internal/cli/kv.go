package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drillworks/drill/topology"
)

type kvFlags struct {
	via    string
	minLSN uint64
	wait   time.Duration
	json   bool
}

func newKVCmd(g *globals) *cobra.Command {
	f := &kvFlags{}
	kv := &cobra.Command{Use: "kv", Short: "Write and read keys through the web tier, as a user would"}
	kv.PersistentFlags().StringVar(&f.via, "via", "", "region whose web tier serves the request (default: the primary's home region)")
	kv.PersistentFlags().BoolVar(&f.json, "json", false, "print the full JSON response")
	put := &cobra.Command{
		Use:     "put KEY VALUE",
		Short:   "Write a key (sent to the current primary)",
		Example: "  drill kv put greeting hello",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			code, out, err := g.kvCall(cmd.Context(), f, http.MethodPut, args[0], args[1])
			if err != nil {
				return err
			}
			if code != http.StatusOK {
				return harnessErr(fmt.Errorf("put %s: %d %v", args[0], code, out["error"]))
			}
			return g.printKV(f, out, fmt.Sprintf("OK lsn=%v epoch=%v primary=%v via=%v", out["lsn"], out["epoch"], out["db_node"], out["node"]))
		},
	}
	get := &cobra.Command{
		Use:     "get KEY",
		Short:   "Read a key (from the region's own database)",
		Example: "  drill kv get greeting --via eu-west",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Poll while the key has not reached the region's replica yet, bounded by --wait.
			deadline := time.Now().Add(f.wait)
			for {
				code, out, err := g.kvCall(cmd.Context(), f, http.MethodGet, args[0], "")
				if err != nil {
					return err
				}
				if code == http.StatusOK {
					return g.printKV(f, out, fmt.Sprint(out["value"]))
				}
				if code != http.StatusNotFound || time.Now().After(deadline) {
					return harnessErr(fmt.Errorf("get %s: %d %v (served by %v)", args[0], code, errOr(out, "not found"), out["db_node"]))
				}
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(50 * time.Millisecond):
				}
			}
		},
	}
	get.Flags().Uint64Var(&f.minLSN, "min-lsn", 0, "read-your-writes: the LSN of your last write")
	get.Flags().DurationVar(&f.wait, "wait", 5*time.Second, "keep trying this long while the key is not there yet")
	kv.AddCommand(put, get)
	return kv
}

func errOr(out map[string]any, def string) any {
	if e, ok := out["error"]; ok {
		return e
	}
	return def
}

func (g *globals) printKV(f *kvFlags, out map[string]any, line string) error {
	if f.json || g.asJSON() {
		enc := json.NewEncoder(g.env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Fprintln(g.env.Stdout, line)
	return nil
}

// kvCall sends one request to a web node of the --via region (trying each of its web nodes).
func (g *globals) kvCall(ctx context.Context, f *kvFlags, method, key, value string) (int, map[string]any, error) {
	c, err := g.attach()
	if err != nil {
		return 0, nil, err
	}
	t := c.plan.Topology
	region := f.via
	if region == "" {
		region = t.PrimaryRegion
	}
	if _, ok := t.Region(region); !ok {
		return 0, nil, usageErr(fmt.Errorf("--via %q: no such region (have %s)", region, strings.Join(t.RegionNames(), ", ")))
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	var lastErr error
	for _, n := range t.NodesOf(topology.RoleWeb, region) {
		addr, err := c.rt.Endpoint(n.Name, topology.PortWeb)
		if err != nil {
			return 0, nil, harnessErr(err)
		}
		u := "http://" + addr + "/kv/" + url.PathEscape(key)
		if f.minLSN > 0 {
			u += fmt.Sprintf("?min_lsn=%d", f.minLSN)
		}
		req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(value))
		if err != nil {
			return 0, nil, harnessErr(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		out := map[string]any{}
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		resp.Body.Close()
		if err := json.Unmarshal(raw, &out); err != nil {
			return 0, nil, harnessErr(fmt.Errorf("%s: bad response: %w", n.Name, err))
		}
		return resp.StatusCode, out, nil
	}
	return 0, nil, harnessErr(errors.Join(fmt.Errorf("no web node of %s answered", region), lastErr))
}
