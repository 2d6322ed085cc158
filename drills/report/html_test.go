package report

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drillworks/drill/drills/history"
	"github.com/drillworks/drill/drills/verdict"
)

// hostileID is a fault id that must come out escaped, never as markup.
const hostileID = `<script>alert("x")</script>&co`

func renderHTML(t *testing.T) (string, *Report) {
	t.Helper()
	ops, _ := drillHistory(t, hostileID)
	r := buildReport(t, ops, nil)
	r.Checks[0].Detail = `detail with <b>markup</b> & "quotes"`
	var buf bytes.Buffer
	if err := WriteHTML(&buf, r, ops); err != nil {
		t.Fatal(err)
	}
	return buf.String(), r
}

// svgOf cuts the inline SVG out of the page.
func svgOf(t *testing.T, page string) string {
	t.Helper()
	start := strings.Index(page, "<svg")
	end := strings.Index(page, "</svg>")
	if start < 0 || end < start {
		t.Fatal("no inline <svg> in the report")
	}
	return page[start : end+len("</svg>")]
}

func TestWriteHTMLTimeline(t *testing.T) {
	page, r := renderHTML(t)
	svg := svgOf(t, page)

	// The SVG is well-formed XML; collect the text of every <text> element.
	dec := xml.NewDecoder(strings.NewReader(svg))
	var texts []string
	var inText bool
	elements := map[string]int{}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed: %v", err)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			elements[tk.Name.Local]++
			inText = tk.Name.Local == "text"
			if inText {
				texts = append(texts, "")
			}
		case xml.CharData:
			if inText {
				texts[len(texts)-1] += string(tk)
			}
		case xml.EndElement:
			inText = false
		}
	}
	if len(r.Faults) != 3 {
		t.Fatalf("want 3 faults, got %d", len(r.Faults))
	}
	for _, f := range r.Faults {
		if !contains(texts, f.ID) {
			t.Errorf("the timeline does not label fault %q (texts: %q)", f.ID, texts)
		}
	}
	for _, lane := range []string{"us-east", "eu-west", "replication lag", "epoch 2 eu-west-db-1"} {
		if !contains(texts, lane) {
			t.Errorf("the timeline lacks %q", lane)
		}
	}
	// 2 lane backgrounds + 3 fault windows + 4 DNS strips (eu-west always eu-west; us-east sent
	// to us-east, eu-west, us-east) + 6 legend swatches; a lag line; ok ticks of both regions, failed ticks of us-east.
	if elements["rect"] != 15 || elements["polyline"] != 1 || elements["path"] != 3 {
		t.Errorf("timeline elements %v: want 15 rects, 1 polyline, 3 paths", elements)
	}
	if !strings.Contains(svg, "<title>sent to eu-west: 19 answers from &#43;14.0s (first 127.77.1.10)</title>") {
		t.Error("us-east's DNS strip does not show the failover to eu-west")
	}
	for _, class := range []string{`class="fault"`, `class="epoch"`, `class="ok"`, `class="failed"`, `fill="#1f77b4"`, `fill="#ff7f0e"`} {
		if !strings.Contains(svg, class) {
			t.Errorf("the timeline lacks %s", class)
		}
	}

	// Escaping: the hostile id and detail never appear as markup.
	if strings.Contains(page, "<script") || strings.Contains(page, "<b>markup") {
		t.Fatal("markup from data reached the page unescaped")
	}
	if !strings.Contains(page, "&lt;script&gt;") || !strings.Contains(page, "&lt;b&gt;markup&lt;/b&gt;") {
		t.Fatal("escaped data missing from the page")
	}

	// Self-contained: nothing loaded from elsewhere, no scripts.
	for _, banned := range []string{"<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import", "http:", "https:"} {
		if strings.Contains(strings.ToLower(page), banned) {
			t.Errorf("the report references external content: %q", banned)
		}
	}

	// The checks table carries verdict colours.
	if !strings.Contains(page, `<tr class="fail"><td>lost_acked_writes</td>`) || !strings.Contains(page, `<tr class="pass"><td>split_brain</td>`) {
		t.Error("checks table rows lack their verdict classes")
	}

	again, _ := renderHTML(t)
	if again != page {
		t.Fatal("the HTML report is not deterministic")
	}
}

func TestWriteHTMLWithoutHistory(t *testing.T) {
	r := &Report{Drill: "empty", Verdict: verdict.Error, Error: "bring-up failed", Start: t0, End: t0.Add(time.Second)}
	var buf bytes.Buffer
	if err := WriteHTML(&buf, r, nil); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	svgOf(t, page)
	for _, want := range []string{"no replication lag samples", "bring-up failed", "No fault was injected.", "Residue was not checked."} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestHTMLInChromium opens the report in headless Chromium and checks the rendered DOM. CI
// installs chromium; without it the test is skipped, loudly.
func TestHTMLInChromium(t *testing.T) {
	var browser string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		t.Skip("SKIPPED: HTML REPORT NOT CHECKED IN A BROWSER — no chromium, chromium-browser or google-chrome on PATH " +
			"(CI installs chromium; install it locally to run this test)")
	}
	page, r := renderHTML(t)
	dir := t.TempDir()
	path := filepath.Join(dir, FileHTML)
	if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-extensions", "--user-data-dir="+filepath.Join(dir, "profile"), "--dump-dom", "file://"+path)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s failed: %v\nstderr:\n%s", browser, err, stderr.String())
	}
	dom := stdout.String()
	if !strings.Contains(dom, "<svg") || !strings.Contains(dom, `id="timeline"`) {
		t.Fatalf("rendered DOM has no timeline SVG:\n%s", dom)
	}
	for _, f := range r.Faults {
		if !strings.Contains(dom, strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(f.ID)) {
			t.Errorf("rendered DOM lacks fault id %q", f.ID)
		}
	}
	if strings.Contains(dom, "<script") {
		t.Error("the rendered DOM holds a script element: data escaped badly")
	}
}

// TestWriteHTMLQueuePanel: a history with queue samples gets a queue backlog panel, one line per
// queue node titled with it; one without has none.
func TestWriteHTMLQueuePanel(t *testing.T) {
	ops, _ := drillHistory(t, "f1")
	page := func(ops []history.Op) string {
		var buf bytes.Buffer
		if err := WriteHTML(&buf, buildReport(t, ops, nil), ops); err != nil {
			t.Fatal(err)
		}
		return svgOf(t, buf.String())
	}
	if strings.Contains(page(ops), "queue backlog") {
		t.Fatal("a queue panel without queue samples")
	}
	last := ops[len(ops)-1]
	for _, n := range []uint64{0, 40, 12, 0} {
		last.Index++
		last.Time = last.Time.Add(100 * time.Millisecond)
		ops = append(ops, history.Op{Index: last.Index, Time: last.Time, Type: history.TypeQueue, Node: "eu-west-queue-1", Region: "eu-west", Backlog: n})
	}
	svg := page(ops)
	for _, want := range []string{"queue backlog", "max 40 jobs", "<title>jobs queued in eu-west-queue-1</title>"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the timeline lacks %q", want)
		}
	}
}
