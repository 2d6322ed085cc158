package dnsgeo

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDig checks the server with BIND's dig, the tool drill users will reach for.
func TestDig(t *testing.T) {
	dig, err := exec.LookPath("dig")
	if err != nil {
		t.Skip("SKIPPED: dig is not installed, so the dig interoperability test did not run " +
			"(install it with: apt-get install -y dnsutils)")
	}
	h := startHarness(t, testNet+".3.1", testTopology(), allUp)
	host, port, _ := net.SplitHostPort(h.addr)
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		full := append([]string{"@" + host, "-p", port, "+tries=1", "+time=2"}, args...)
		out, err := exec.CommandContext(ctx, dig, full...).CombinedOutput()
		if err != nil {
			t.Fatalf("dig %s: %v\n%s", strings.Join(full, " "), err, out)
		}
		return string(out)
	}
	expect := func(out string, wants ...string) {
		t.Helper()
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Errorf("dig output lacks %q:\n%s", w, out)
			}
		}
	}

	out := run("-b", srcUnknown, "app."+zone, "A", "+subnet=203.0.113.0/24")
	expect(out, "status: NOERROR", "flags: qr aa rd;", "CLIENT-SUBNET: 203.0.113.0/24/24",
		"app.drill.test.\t\t5\tIN\tA\t"+usWeb1, "app.drill.test.\t\t5\tIN\tA\t"+usWeb2)

	out = run("-b", srcEUWest, "app."+zone, "A")
	expect(out, "status: NOERROR", "IN\tA\t"+euWeb1, "IN\tA\t"+euWeb2)
	if strings.Contains(out, "CLIENT-SUBNET") {
		t.Errorf("ECS in a reply to a query without it:\n%s", out)
	}

	out = run("-b", srcEUWest, "app."+zone, "A", "+subnet=0")
	expect(out, "CLIENT-SUBNET: 0.0.0.0/0/0", "IN\tA\t"+euWeb1)

	out = run("-b", srcUSEast, zone, "SOA", "+subnet=198.51.100.0/24")
	expect(out, "CLIENT-SUBNET: 198.51.100.0/24/0", "IN\tSOA\tns-us-east-1.drill.test. hostmaster.drill.test.")

	out = run("-b", srcUSEast, "nothing."+zone, "A")
	expect(out, "status: NXDOMAIN", "AUTHORITY: 1")

	out = run("-b", srcUSEast, "example.com.", "A")
	expect(out, "status: REFUSED")

	out = run("-b", srcUSEast, "+tcp", "_status."+zone, "TXT")
	expect(out, `"region=us-east healthy=true primary=true epoch=3 since=`, "fail_static=false")

	out = run("-b", srcUSEast, "-q", "id.server.", "-c", "CH", "-t", "TXT")
	expect(out, `"us-east-dns-1"`)

	h.set(usEastDown)
	out = run("-b", srcUSEast, "app."+zone, "A", "+subnet=203.0.113.0/24")
	expect(out, "CLIENT-SUBNET: 203.0.113.0/24/0", "app.drill.test.\t\t1\tIN\tA\t"+euWeb1)
}
