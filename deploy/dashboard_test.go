package deploy

import (
	"bufio"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// documentedMetrics reads docs/metrics.md: each table row's metric name
// and its labels. A coordinator test checks that every one of them is
// exposed (TestDocumentedMetricsAreExposed), so a name found here exists.
func documentedMetrics(t *testing.T) map[string]map[string]bool {
	t.Helper()
	f, err := os.Open("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `(weir_[a-z0-9_]+)` \\| [a-z]+ \\|([^|]*)\\|")
	label := regexp.MustCompile("`([a-z_]+)`")
	metrics := map[string]map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := row.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		labels := map[string]bool{}
		for _, l := range label.FindAllStringSubmatch(m[2], -1) {
			labels[l[1]] = true
		}
		metrics[m[1]] = labels
	}
	if len(metrics) < 20 {
		t.Fatalf("docs/metrics.md: found %d metrics in its tables; has the table format changed?", len(metrics))
	}
	return metrics
}

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		RefID        string `json:"refId"`
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`
}

var (
	metricName = regexp.MustCompile(`\bweir_[a-z0-9_]+\b`)
	selector   = regexp.MustCompile(`(weir_[a-z0-9_]+)\{([^}]*)\}`)
	matcher    = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)`)
	grouping   = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	legendVar  = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)
)

// targetLabels are labels Prometheus adds to every scraped series.
var targetLabels = map[string]bool{"instance": true}

func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile("grafana/weir-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("weir-dashboard.json: %v", err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard without uid or title")
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	if !vars["datasource"] || !vars["job"] {
		t.Errorf("template variables %v; want datasource and job", vars)
	}
	docs := documentedMetrics(t)
	used := map[string]bool{}
	// checkExpr: every metric is documented, every label a selector,
	// grouping or legend names is one of those metrics' labels.
	checkExpr := func(where, expr, legend string) {
		names := metricName.FindAllString(expr, -1)
		if len(names) == 0 {
			t.Errorf("%s: %q queries no weir_ metric", where, expr)
		}
		known := map[string]bool{}
		for k := range targetLabels {
			known[k] = true
		}
		for _, n := range names {
			labels, ok := docs[n]
			if !ok {
				t.Errorf("%s: %s is not a metric in docs/metrics.md", where, n)
			}
			used[n] = true
			for l := range labels {
				known[l] = true
			}
		}
		for _, s := range selector.FindAllStringSubmatch(expr, -1) {
			for _, m := range matcher.FindAllStringSubmatch(s[2], -1) {
				if !docs[s[1]][m[1]] && !targetLabels[m[1]] {
					t.Errorf("%s: %s has no label %q (docs/metrics.md)", where, s[1], m[1])
				}
			}
		}
		for _, g := range grouping.FindAllStringSubmatch(expr, -1) {
			for _, l := range strings.Split(g[1], ",") {
				if l = strings.TrimSpace(l); l != "" && !known[l] {
					t.Errorf("%s: groups by %q, a label none of %v has", where, l, names)
				}
			}
		}
		for _, l := range legendVar.FindAllStringSubmatch(legend, -1) {
			if !known[l[1]] {
				t.Errorf("%s: legend names {{%s}}, a label none of %v has", where, l[1], names)
			}
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("variable %s: query: %v", v.Name, err)
		}
		checkExpr("variable "+v.Name, q.Query, "")
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		where := "panel " + p.Title
		if ids[p.ID] {
			t.Errorf("%s: id %d used twice", where, p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("%s: gridPos %+v outside Grafana's 24 columns", where, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("%s: datasource %q, want the ${datasource} variable", where, p.Datasource.UID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no queries", where)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if refs[tg.RefID] {
				t.Errorf("%s: refId %s twice", where, tg.RefID)
			}
			refs[tg.RefID] = true
			checkExpr(where, tg.Expr, tg.LegendFormat)
		}
	}
	// What the dashboard is for (docs/kubernetes.md, "Dashboards").
	for _, m := range []string{
		"weir_task_records_out_total",               // throughput
		"weir_task_backpressured_seconds_total",     // backpressure
		"weir_job_last_checkpoint_duration_seconds", // checkpoint duration
		"weir_job_last_checkpoint_size_bytes",       // checkpoint size
		"weir_job_checkpoints_total",                // checkpoint failures
		"weir_job_restarts_total",                   // restarts
		"weir_job_source_lag_records",               // lag
		"weir_operator_state_bytes",                 // state bytes
		"weir_worker_memory_bytes",                  // worker memory
	} {
		if !used[m] {
			t.Errorf("the dashboard does not show %s", m)
		}
	}
}
