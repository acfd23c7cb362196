package web_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/bastion-dev/bastion/web"
)

const chromiumPath = "/usr/bin/chromium"

// browser is a headless Chromium tab driven by chromedp, with the page's
// script errors and Content-Security-Policy violations collected so the
// test can insist there were none.
type browser struct {
	t   *testing.T
	ctx context.Context
	dir string // screenshots

	mu       sync.Mutex
	problems []string // guarded by mu
	shots    int      // guarded by mu
}

// step is one browser action that returns nothing.
type step = chromedp.Action[chromedp.Void]

// watchCSP runs in every document before the page's own scripts: it keeps
// the page's CSP violation reports where the test can read them.
const watchCSP = `window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':' + e.lineNumber);
});`

func newBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("this test drives headless Chromium at %s, which is missing (make deps installs it): %v", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf), chromedp.WithErrorf(t.Logf))
	t.Cleanup(cancel)

	b := &browser{t: t, ctx: ctx, dir: t.TempDir()}
	// The first call starts the browser, for as long as ctx lives; later
	// steps use timeouts derived from ctx.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	b.run("install the CSP watcher", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: watchCSP})
		return err
	}))

	// Collect what the page says on its console until the test ends.
	cctx, stop := context.WithCancel(ctx)
	messages := chromedp.Console(cctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			// Failed fetches (the 401 and 403 the test provokes) are
			// logged by the browser with source "network"; script and
			// security errors are not expected at all.
			if m.IsException() || m.Type == chromedp.ConsoleError && m.Source != "network" {
				b.mu.Lock()
				b.problems = append(b.problems, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { stop(); <-done })
	return b
}

// run runs one named step; on failure it saves a screenshot and stops the
// test.
func (b *browser) run(name string, steps ...step) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.screenshot("failed-" + strings.ReplaceAll(name, " ", "-"))
		b.t.Fatalf("%s: %v\nproblems on the page: %q", name, err, b.pageProblems())
	}
}

// eval evaluates a JavaScript expression and returns its result.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 45*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls until the expression is true in the page.
func (b *browser) waitFor(what, expr string) {
	b.t.Helper()
	b.run("wait for "+what, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(30*time.Second)))
}

// screenshot saves the full page as PNG in the test's temporary directory
// and, when BASTION_ARTIFACTS is set, in that directory too.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	b.mu.Lock()
	b.shots++
	file := fmt.Sprintf("web-%02d-%s.png", b.shots, name)
	b.mu.Unlock()
	dirs := []string{b.dir}
	if d := os.Getenv("BASTION_ARTIFACTS"); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.t.Errorf("screenshot dir: %v", err)
			continue
		}
		p := filepath.Join(d, file)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			b.t.Errorf("screenshot: %v", err)
			continue
		}
		b.t.Logf("screenshot: %s", p)
	}
}

func (b *browser) pageProblems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// checkClean fails the test when the page threw, logged an error, or broke
// its Content-Security-Policy.
func (b *browser) checkClean(when string) {
	b.t.Helper()
	if csp := eval[[]string](b, `window.__csp || ['the CSP watcher did not run']`); len(csp) > 0 {
		b.t.Errorf("%s: CSP violations: %q", when, csp)
	}
	if p := b.pageProblems(); len(p) > 0 {
		b.t.Errorf("%s: page problems: %q", when, p)
	}
}

// playerText is the text the asciinema player's terminal shows.
const playerText = `(document.querySelector('#player .ap-term') || {textContent: ''}).textContent`

// TestE2EBrowser drives the UI in headless Chromium against fake backends:
// sign-in, the recordings list and filter, the player and its command
// index, and approving, refusing and denying requests.
func TestE2EBrowser(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(e.mux) // listens on 127.0.0.1
	defer srv.Close()
	b := newBrowser(t)

	// Sign-in: the prompt appears, a wrong token is refused, the right one
	// is kept in sessionStorage only.
	b.run("open the UI", chromedp.Navigate(srv.URL+"/ui/"), chromedp.WaitVisible(chromedp.ID("token")))
	if eval[bool](b, `document.querySelector('#recordings').hidden && document.querySelector('#nav').hidden`) != true {
		t.Error("data pages visible before sign-in")
	}
	b.screenshot("sign-in")
	b.run("wrong token", chromedp.SendKeys(chromedp.ID("token"), "not-a-token"), chromedp.Click(chromedp.ID("login-submit")))
	b.waitFor("the refusal", `!document.querySelector('#login-error').hidden`)
	if got := eval[string](b, `document.querySelector('#login-error').textContent`); !strings.Contains(got, "refused") {
		t.Errorf("wrong token: login error %q", got)
	}
	if got := eval[any](b, `sessionStorage.getItem('bastion.token')`); got != nil {
		t.Errorf("a refused token stays in sessionStorage: %v", got)
	}
	b.run("right token", chromedp.SendKeys(chromedp.ID("token"), aliceToken), chromedp.Click(chromedp.ID("login-submit")))

	// The list loads, newest first, and markup in a subject stays text.
	b.waitFor("the sessions", `document.querySelectorAll('#sessions tbody tr').length === 2`)
	if got := eval[[]string](b, `[...document.querySelectorAll('#sessions tbody tr')].map(tr => tr.dataset.id)`); !cmp.Equal(got, []string{"s-deploy", "s-older"}) {
		t.Errorf("session rows %q, want newest first", got)
	}
	if got := eval[string](b, `document.querySelector('#who-name').textContent`); got != "alice (human)" {
		t.Errorf("signed in as %q", got)
	}
	if !eval[bool](b, `document.getElementById('xss') === null && [...document.querySelectorAll('#sessions td.subject')].some(td => td.textContent === '<img src=x id=xss>')`) {
		t.Error("a subject with markup was not shown as plain text")
	}
	if got := eval[[]any](b, `[sessionStorage.getItem('bastion.token'), localStorage.length, document.cookie]`); !cmp.Equal(got, []any{aliceToken, 0.0, ""}) {
		t.Errorf("token storage [sessionStorage, localStorage.length, cookie] = %v", got)
	}
	b.screenshot("recordings")

	// The filter goes to the backend and narrows the list.
	b.run("filter", chromedp.SendKeys(chromedp.ID("filter-subject"), "img"), chromedp.Click(chromedp.ID("filter-denied")),
		chromedp.Click(chromedp.ID("filter-apply")))
	b.waitFor("the filtered list", `location.hash === '#/recordings?subject=img&denied=1' && document.querySelectorAll('#sessions tbody tr').length === 1`)
	if calls := e.recs.listCalls(); calls[len(calls)-1] != "img|true" {
		t.Errorf("List calls %q, want the last with subject img, denied only", calls)
	}
	b.run("clear the filter", chromedp.Navigate(srv.URL+"/ui/#/recordings"))
	b.waitFor("the full list", `document.querySelectorAll('#sessions tbody tr').length === 2`)

	// The player plays the recording beside its command index.
	b.run("open a recording", chromedp.Click(chromedp.CSS(`#sessions tr[data-id="s-deploy"] a`)))
	b.waitFor("the player", `location.hash === '#/recordings/s-deploy' && !!window.bastionPlayer && !!document.querySelector('#player .ap-term')`)
	// bin\ufffdary follows an "ob" event, which the player must skip (the
	// asciicast spec has players ignore codes they do not know).
	b.waitFor("recorded output in the terminal", playerText+`.includes('first-output') && `+playerText+`.includes('bin\ufffdary')`)
	if got := eval[[]string](b, `[...document.querySelectorAll('#commands tbody tr')].map(tr => tr.textContent)`); !cmp.Equal(got, []string{
		"0:00.4echo first-outputallowdefault-allow0",
		"0:40.1cat /srv/app/VERSIONallowread-app0",
	}) {
		t.Errorf("command index rows %q", got)
	}
	if got := eval[float64](b, `window.bastionPlayer.getCurrentTime()`); got >= 40 {
		t.Fatalf("player already at %.1f s before any seek; the seek check below would prove nothing", got)
	}
	if eval[bool](b, playerText+`.includes('second-output-after-seek')`) {
		t.Fatal("second command's output shown before seeking to it")
	}
	b.screenshot("player")

	// Clicking the second command seeks there and plays: its output, 40 s
	// into the recording, appears at once.
	b.run("seek to command 2", chromedp.Click(chromedp.CSS(`#commands tbody tr:nth-child(2) button.seek`)))
	b.waitFor("the second command's output", `window.bastionPlayer.getCurrentTime() >= 40.1 && `+playerText+`.includes('second-output-after-seek')`)
	if got := eval[float64](b, `window.bastionPlayer.getCurrentTime()`); got < 40.1 || got > 41.01 {
		t.Errorf("after seeking to command 2 (40.1 s) the player is at %.2f s", got)
	}
	if !eval[bool](b, `document.querySelector('#commands tbody tr:nth-child(2)').classList.contains('current')`) {
		t.Error("the sought command is not highlighted")
	}
	b.screenshot("player-after-seek")
	b.checkClean("player")

	// Approvals: pending requests with who, why and age.
	b.run("open approvals", chromedp.Click(chromedp.ID("nav-approvals")))
	b.waitFor("the requests", `document.querySelectorAll('#approval-list tbody tr').length === 3`)
	if got := eval[[]string](b, `[...document.querySelectorAll('#approval-list tr[data-id="a-deploy"] td')].map(td => td.textContent)`); !cmp.Equal(got, []string{
		"5m 00s (expires in 1m 00s)",
		"kubectl delete pod web-0",
		"deploy-bot (agent)",
		"Requester: pod is wedged after the deployPolicy: deleting cluster objects needs approval [rule kubectl-delete]",
		"s-deploy",
		"pending",
		"ApproveDeny",
	}) {
		t.Errorf("a-deploy row %q", got)
	}
	b.screenshot("approvals")

	// Approve reaches the backend with the operator's identity.
	b.run("approve a-deploy", chromedp.Click(chromedp.CSS(`tr[data-id="a-deploy"] button.approve`)))
	b.waitFor("the approval", `document.querySelector('#approvals-status').textContent === 'Approved a-deploy.' &&
		document.querySelector('tr[data-id="a-deploy"] td.status').textContent === 'approved'`)
	alice := web.Operator{Subject: "alice", Kind: "human"}
	if d := cmp.Diff([]decision{{"approve", "a-deploy", alice, ""}}, e.apps.decisions()); d != "" {
		t.Errorf("backend calls after Approve (-want +got):\n%s", d)
	}
	if eval[int](b, `document.querySelectorAll('tr[data-id="a-deploy"] button').length`) != 0 {
		t.Error("a decided request still offers buttons")
	}

	// Four-eyes: the server's refusal is shown as it is.
	b.run("approve own request", chromedp.Click(chromedp.CSS(`tr[data-id="a-own"] button.approve`)))
	b.waitFor("the refusal", `!document.querySelector('#approvals-error').hidden`)
	if got := eval[string](b, `document.querySelector('#approvals-error').textContent`); got != "Could not approve request a-own: you cannot approve your own request" {
		t.Errorf("four-eyes refusal shows %q", got)
	}
	b.screenshot("four-eyes-refusal")

	// Deny asks for a comment and sends it.
	b.run("deny a-third", chromedp.Click(chromedp.CSS(`tr[data-id="a-third"] button.deny`)))
	b.waitFor("the deny dialog", `document.querySelector('#deny-dialog').open && document.querySelector('#deny-id').textContent === 'a-third'`)
	b.screenshot("deny-dialog")
	b.run("confirm deny", chromedp.SendKeys(chromedp.ID("deny-comment"), "not on a Friday"), chromedp.Click(chromedp.ID("deny-confirm")))
	b.waitFor("the denial", `document.querySelector('#approvals-status').textContent === 'Denied a-third.' && !document.querySelector('#deny-dialog').open`)
	if d := cmp.Diff([]decision{
		{"approve", "a-deploy", alice, ""},
		{"approve", "a-own", alice, ""},
		{"deny", "a-third", alice, "not on a Friday"},
	}, e.apps.decisions()); d != "" {
		t.Errorf("backend calls after Deny (-want +got):\n%s", d)
	}
	b.checkClean("approvals")

	// A token that stops working sends the operator back to the prompt.
	e.auth.revoke(aliceToken)
	b.run("refresh with a revoked token", chromedp.Click(chromedp.ID("approvals-refresh")))
	b.waitFor("the sign-in prompt", `!document.querySelector('#login').hidden && document.querySelector('#approvals').hidden`)
	if got := eval[string](b, `document.querySelector('#login-error').textContent`); !strings.Contains(got, "Sign in again") {
		t.Errorf("after a 401 the prompt says %q", got)
	}
	if got := eval[any](b, `sessionStorage.getItem('bastion.token')`); got != nil {
		t.Errorf("a refused token stays in sessionStorage: %v", got)
	}
	b.screenshot("signed-out")
	b.checkClean("sign-out")
}
