package gossip

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"
)

func TestFaultsZeroValueHasNoRules(t *testing.T) {
	var f Faults
	if f.Blocks(netip.MustParseAddr("127.90.1.1")) {
		t.Fatal("zero Faults blocks traffic")
	}
	if _, ok := f.DelayFor(netip.MustParseAddr("127.90.1.1")); ok {
		t.Fatal("zero Faults delays traffic")
	}
	if r := f.Rules(); len(r.Drop) != 0 || len(r.Delays) != 0 {
		t.Fatalf("zero Faults rules = %+v", r)
	}
}

func TestFaultsPrefixMatching(t *testing.T) {
	f := NewFaults(Rules{
		Drop: []netip.Prefix{netip.MustParsePrefix("127.90.2.7/24"), netip.MustParsePrefix("127.90.9.9/32")},
		Delays: []Delay{
			{Prefix: netip.MustParsePrefix("127.90.0.0/16"), Latency: 100 * time.Millisecond},
			{Prefix: netip.MustParsePrefix("127.90.3.0/24"), Latency: 300 * time.Millisecond, Jitter: 20 * time.Millisecond},
			{Prefix: netip.MustParsePrefix("127.90.3.0/24"), Latency: 999 * time.Millisecond}, // tie: first wins
		},
	})
	for _, c := range []struct {
		addr  string
		block bool
	}{
		{"127.90.2.1", true},
		{"127.90.2.254", true},
		{"::ffff:127.90.2.3", true}, // IPv4-mapped form of a blocked address
		{"127.90.9.9", true},
		{"127.90.9.8", false},
		{"127.90.1.1", false},
		{"127.90.3.1", false},
	} {
		if got := f.Blocks(netip.MustParseAddr(c.addr)); got != c.block {
			t.Errorf("Blocks(%s) = %v, want %v", c.addr, got, c.block)
		}
	}
	if got := f.Rules().Drop[0]; got != netip.MustParsePrefix("127.90.2.0/24") {
		t.Errorf("drop prefix not masked: %v", got)
	}

	d, ok := f.DelayFor(netip.MustParseAddr("127.90.3.5"))
	if !ok || d.Latency != 300*time.Millisecond || d.Jitter != 20*time.Millisecond {
		t.Errorf("DelayFor(127.90.3.5) = %+v, %v; want the /24 rule listed first", d, ok)
	}
	d, ok = f.DelayFor(netip.MustParseAddr("127.90.4.5"))
	if !ok || d.Latency != 100*time.Millisecond {
		t.Errorf("DelayFor(127.90.4.5) = %+v, %v; want the /16 rule", d, ok)
	}
	if _, ok := f.DelayFor(netip.MustParseAddr("127.91.0.1")); ok {
		t.Error("DelayFor(127.91.0.1) matched")
	}
	for range 1000 {
		s := Delay{Latency: 300 * time.Millisecond, Jitter: 20 * time.Millisecond}.sample()
		if s < 280*time.Millisecond || s > 320*time.Millisecond {
			t.Fatalf("sample %v outside 300ms±20ms", s)
		}
	}
	if s := (Delay{Latency: 5 * time.Millisecond, Jitter: time.Second}).sample(); s < 0 {
		t.Fatalf("sample %v below zero", s)
	}
}

func TestFaultsClearAndCopies(t *testing.T) {
	f := &Faults{}
	f.Set(Rules{Drop: []netip.Prefix{netip.MustParsePrefix("127.90.1.0/24")}})
	r := f.Rules()
	r.Drop[0] = netip.MustParsePrefix("127.90.5.0/24") // must not alter f
	if !f.Blocks(netip.MustParseAddr("127.90.1.1")) || f.Blocks(netip.MustParseAddr("127.90.5.1")) {
		t.Fatal("Rules() returned an alias of the live rules")
	}
	f.Clear()
	if f.Blocks(netip.MustParseAddr("127.90.1.1")) {
		t.Fatal("Clear kept a drop rule")
	}
	if r := f.Rules(); len(r.Drop) != 0 || len(r.Delays) != 0 {
		t.Fatalf("after Clear rules = %+v", r)
	}
}

func TestRulesJSON(t *testing.T) {
	in := `{"drop":["127.90.2.0/24"],"delays":[
		{"prefix":"127.90.3.0/24","latency":"300ms","jitter":"20ms"},
		{"prefix":"127.90.4.0/24","latency":150,"jitter":12.5}]}`
	var r Rules
	if err := json.Unmarshal([]byte(in), &r); err != nil {
		t.Fatal(err)
	}
	want := Rules{
		Drop: []netip.Prefix{netip.MustParsePrefix("127.90.2.0/24")},
		Delays: []Delay{
			{Prefix: netip.MustParsePrefix("127.90.3.0/24"), Latency: 300 * time.Millisecond, Jitter: 20 * time.Millisecond},
			{Prefix: netip.MustParsePrefix("127.90.4.0/24"), Latency: 150 * time.Millisecond, Jitter: 12500 * time.Microsecond},
		},
	}
	if len(r.Drop) != 1 || r.Drop[0] != want.Drop[0] || len(r.Delays) != 2 || r.Delays[0] != want.Delays[0] || r.Delays[1] != want.Delays[1] {
		t.Fatalf("decoded %+v, want %+v", r, want)
	}
	out, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	const wantJSON = `{"drop":["127.90.2.0/24"],"delays":[{"prefix":"127.90.3.0/24","latency":"300ms","jitter":"20ms"},{"prefix":"127.90.4.0/24","latency":"150ms","jitter":"12.5ms"}]}`
	if string(out) != wantJSON {
		t.Fatalf("encoded %s\nwant    %s", out, wantJSON)
	}
	var bad Rules
	if err := json.Unmarshal([]byte(`{"delays":[{"prefix":"127.90.3.0/24","latency":"soon"}]}`), &bad); err == nil {
		t.Fatal("bad latency accepted")
	}
}

func TestFaultsLoss(t *testing.T) {
	f := NewFaults(Rules{Loss: []Loss{
		{Prefix: netip.MustParsePrefix("127.90.2.7/24"), Percent: 30},
		{Prefix: netip.MustParsePrefix("127.90.3.0/24"), Percent: 250}, // capped at 100
		{Prefix: netip.MustParsePrefix("127.90.4.0/24"), Percent: 0},   // no loss: left out
		{Percent: 50}, // no prefix: left out
	}})
	r := f.Rules()
	if len(r.Loss) != 2 || r.Loss[0] != (Loss{netip.MustParsePrefix("127.90.2.0/24"), 30}) || r.Loss[1].Percent != 100 {
		t.Fatalf("loss rules %+v, want the /24 masked at 30 %% and the 250 %% capped at 100", r.Loss)
	}
	lost := 0
	const n = 10000
	for range n {
		if f.Loses(netip.MustParseAddr("::ffff:127.90.2.200")) {
			lost++
		}
		if !f.Loses(netip.MustParseAddr("127.90.3.1")) {
			t.Fatal("a 100 % loss rule let a packet through")
		}
		if f.Loses(netip.MustParseAddr("127.90.4.1")) || f.Loses(netip.MustParseAddr("127.91.2.1")) {
			t.Fatal("a packet lost without a matching loss rule")
		}
	}
	// 30 % of 10000: mean 3000, standard deviation 46; ±400 is far outside chance.
	if lost < 2600 || lost > 3400 {
		t.Fatalf("30 %% loss dropped %d of %d packets", lost, n)
	}
	if f.Blocks(netip.MustParseAddr("127.90.3.1")) {
		t.Fatal("a loss rule black-holes streams too")
	}
	r.Loss[0].Percent = 99 // a copy: must not alter f
	if f.Rules().Loss[0].Percent != 30 {
		t.Fatal("Rules() returned an alias of the live loss rules")
	}
	f.Clear()
	if f.Loses(netip.MustParseAddr("127.90.3.1")) || len(f.Rules().Loss) != 0 {
		t.Fatal("Clear kept a loss rule")
	}
}

func TestRulesJSONLoss(t *testing.T) {
	var r Rules
	if err := json.Unmarshal([]byte(`{"drop":[],"delays":[],"loss":[{"prefix":"127.90.2.0/24","percent":30}]}`), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Loss) != 1 || r.Loss[0] != (Loss{netip.MustParsePrefix("127.90.2.0/24"), 30}) {
		t.Fatalf("decoded %+v", r)
	}
	out, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"drop":[],"delays":[],"loss":[{"prefix":"127.90.2.0/24","percent":30}]}`; string(out) != want {
		t.Fatalf("encoded %s\nwant    %s", out, want)
	}
	// Rules without loss keep their old wire form.
	out, _ = json.Marshal(Rules{})
	if string(out) != `{"drop":null,"delays":null}` {
		t.Fatalf("empty rules encoded as %s", out)
	}
}
