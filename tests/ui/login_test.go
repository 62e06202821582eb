package ui

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/auth"
)

// startCoordinator runs a coordinator without workers; tokens nil serves
// it like --insecure.
func startCoordinator(t *testing.T, tokens coordinator.Authenticator) string {
	t.Helper()
	cfg := coordinator.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", ScheduleTimeout: -1,
		CheckpointStorage: "file://" + t.TempDir()}
	if tokens != nil {
		cfg.Tokens = tokens
	}
	co, err := coordinator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := co.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(co.Stop)
	return "http://" + co.HTTPAddr()
}

// TestWebUILogin: a coordinator that wants tokens shows the page nothing
// but a login form until a token is given; a wrong token is refused and
// said so; a good one shows the overview and is kept in sessionStorage
// (not localStorage); logging out hides everything again. A coordinator
// run with --insecure needs no login and says so on the page.
func TestWebUILogin(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	ctx := browser(t)
	file := filepath.Join(t.TempDir(), "tokens")
	tok, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(auth.Line("alice", auth.Viewer, tok)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.Open(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := startCoordinator(t, tokens)
	shots := &shooter{t: t, ctx: ctx, dir: artifactDir(t)}
	current = shots
	defer func() { current = nil }()

	run(t, ctx, "open the page without a token", chromedp.Navigate(base+"/"), chromedp.WaitVisible(css(`#login #token`)))
	noData := func() {
		t.Helper()
		for _, sel := range []string{`#overview-cards`, `#workers`, `#jobs`} {
			if n := count(t, ctx, sel); n != 0 {
				t.Fatalf("%s is on the page without a token", sel)
			}
		}
		if s := text(t, ctx, "main"); strings.Contains(s, "Slots") || strings.Contains(s, "Workers") {
			t.Fatalf("data on the page without a token: %q", s)
		}
		if get(t, ctx, "logout hidden", chromedp.Evaluate[bool](`document.getElementById('logout').hidden`)) != true {
			t.Fatal("a log-out button without a token")
		}
	}
	noData()
	if get(t, ctx, "insecure banner", chromedp.Evaluate[bool](`document.getElementById('insecure').hidden`)) != true {
		t.Fatal("the insecure banner shows on a coordinator with tokens")
	}
	shots.take("login")

	// A wrong token: refused, said so, still nothing shown.
	run(t, ctx, "log in with a wrong token", chromedp.SendKeys(css(`#token`), "weir_wrong"), chromedp.Click(css(`#login-submit`)))
	waitFor(t, 10*time.Second, "the refusal", func() bool {
		return strings.Contains(text(t, ctx, `#login-error`), "refused this token")
	})
	noData()

	// The right one: the overview, and the token only in sessionStorage.
	get(t, ctx, "clear the field", chromedp.Evaluate[string](`document.getElementById('token').value = ''`))
	run(t, ctx, "log in", chromedp.SendKeys(css(`#token`), tok), chromedp.Click(css(`#login-submit`)))
	run(t, ctx, "the overview", chromedp.WaitVisible(css(`#overview-cards`)))
	if s := get(t, ctx, "storage", chromedp.Evaluate[string](`sessionStorage.getItem('weir.token') + '|' + localStorage.length`)); s != tok+"|0" {
		t.Fatalf("storage %q, want the token in sessionStorage only", s)
	}
	if get(t, ctx, "logout hidden", chromedp.Evaluate[bool](`document.getElementById('logout').hidden`)) {
		t.Fatal("no log-out button after logging in")
	}
	shots.take("logged-in")

	// A reload keeps the tab's token.
	run(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(css(`#overview-cards`)))

	// Log out: the form again, nothing else, the token gone.
	click(t, ctx, `#logout`)
	run(t, ctx, "logged out", chromedp.WaitVisible(css(`#login #token`)))
	noData()
	if s := get(t, ctx, "storage", chromedp.Evaluate[string](`String(sessionStorage.getItem('weir.token'))`)); s != "null" {
		t.Fatalf("token still stored after log-out: %q", s)
	}

	// --insecure: no login, and the page says so.
	open := startCoordinator(t, nil)
	run(t, ctx, "open an insecure coordinator", chromedp.Navigate(open+"/"), chromedp.WaitVisible(css(`#overview-cards`)))
	if get(t, ctx, "insecure banner", chromedp.Evaluate[bool](`document.getElementById('insecure').hidden`)) {
		t.Fatal("no insecure banner on a coordinator without tokens")
	}
	if s := text(t, ctx, `#insecure`); !strings.Contains(s, "no authentication") {
		t.Fatalf("banner %q", s)
	}
}
