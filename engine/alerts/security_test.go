package alerts_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/alerts"
	"github.com/perchhq/perch/engine/spec"
)

const token = "0f1e2d3c4b5a69788796a5b4c3d2e1f0" // what ${ALERTS_TOKEN} holds in these tests

// authYAML is rolloutYAML with lines added to its alerts block, after listen.
func authYAML(lines string) string {
	return strings.Replace(rolloutYAML, "  listen: 127.0.0.1:0\n", "  listen: 127.0.0.1:0\n"+lines, 1)
}

// env is a getenv over a map.
func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

// postAs posts body with the header set as given ("" for none).
func postAs(h http.Handler, method, authorization, body string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, "/", strings.NewReader(body))
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	h.ServeHTTP(rec, req)
	return rec
}

func basic(user, pass string) string {
	req, _ := http.NewRequest(http.MethodPost, "/", nil)
	req.SetBasicAuth(user, pass)
	return req.Header.Get("Authorization")
}

// Anyone who could reach the receiver could roll the release back with one curl: without the
// bearer token a request is refused before it is read, and nothing reaches the journal.
func TestBearerTokenIsRequired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := parseSpec(t, authYAML("  bearerToken: \"${ALERTS_TOKEN}\"\n"))
		r := startEngine(t, spec, &world{})
		rcv := newReceiver(t, r.eng, spec.Alerts, alerts.Options{Getenv: env(map[string]string{"ALERTS_TOKEN": token})})
		r.waitFor(time.Hour, "running", func(st engine.State) bool { return st.Phase == engine.PhaseRunning })
		matching := payload(firing("alertname", "HighErrorRate", "service", "web"))
		for _, tc := range []struct{ name, method, authorization string }{
			{"no credentials", http.MethodPost, ""},
			{"wrong token", http.MethodPost, "Bearer 0f1e2d3c4b5a69788796a5b4c3d2e1f1"},
			{"token with more after it", http.MethodPost, "Bearer " + token + "x"},
			{"token as a prefix", http.MethodPost, "Bearer " + token[:16]},
			{"token under another scheme", http.MethodPost, "Token " + token},
			{"token as a basic auth password", http.MethodPost, basic("alertmanager", token)},
			{"no credentials, another method", http.MethodGet, ""},
		} {
			res := postAs(rcv, tc.method, tc.authorization, matching)
			if res.Code != http.StatusUnauthorized || res.Header().Get("WWW-Authenticate") != `Bearer realm="perch"` {
				t.Errorf("%s: answer %d %q (WWW-Authenticate %q), want 401 with a Bearer challenge", tc.name, res.Code, res.Body.String(), res.Header().Get("WWW-Authenticate"))
			}
		}
		if notes, refused := r.notes(), r.journal.ofType(engine.EventCommandRefused); len(notes)+len(refused) > 0 {
			t.Errorf("refused requests were journaled: notes %q, refused commands %+v", notes, refused)
		}
		if st := r.eng.Snapshot(); st.Phase != engine.PhaseRunning {
			t.Fatalf("phase %s after refused requests, want running", st.Phase)
		}
		// The scheme is case-insensitive (RFC 9110); the token is not.
		if res := postAs(rcv, http.MethodPost, "bearer "+token, matching); res.Code != http.StatusOK || !strings.HasPrefix(res.Body.String(), "rolled back for HighErrorRate") {
			t.Errorf("with the token: answer %d %q, want the rollback", res.Code, res.Body.String())
		}
	})
}

func TestBasicAuthIsRequired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := parseSpec(t, authYAML("  basicAuth: {username: alertmanager, password: \"${ALERTS_PASSWORD}\"}\n"))
		r := startEngine(t, spec, &world{})
		rcv := newReceiver(t, r.eng, spec.Alerts, alerts.Options{Getenv: env(map[string]string{"ALERTS_PASSWORD": token})})
		r.waitFor(time.Hour, "running", func(st engine.State) bool { return st.Phase == engine.PhaseRunning })
		matching := payload(firing("alertname", "HighErrorRate", "service", "web"))
		for name, authorization := range map[string]string{
			"no credentials": "",
			"wrong password": basic("alertmanager", token[1:]),
			"wrong user":     basic("alertmanage", token),
			"bearer token":   "Bearer " + token,
		} {
			res := postAs(rcv, http.MethodPost, authorization, matching)
			if res.Code != http.StatusUnauthorized || !strings.HasPrefix(res.Header().Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("%s: answer %d %q, want 401 with a Basic challenge", name, res.Code, res.Body.String())
			}
		}
		if rb := r.journal.ofType(engine.EventRollbackStarted); len(rb) != 0 {
			t.Fatalf("rolled back without credentials: %+v", rb)
		}
		if res := postAs(rcv, http.MethodPost, basic("alertmanager", token), matching); res.Code != http.StatusOK || !strings.HasPrefix(res.Body.String(), "rolled back for HighErrorRate") {
			t.Errorf("with the credentials: answer %d %q, want the rollback", res.Code, res.Body.String())
		}
	})
}

// Credentials come from the environment when the receiver starts; a missing one stops it
// from starting, and a weak one is warned about.
func TestCredentialsFromTheEnvironment(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := parseSpec(t, authYAML("  bearerToken: \"${ALERTS_TOKEN}\"\n"))
		r := startEngine(t, s, &world{})
		_, err := alerts.NewReceiver(r.eng, s.Alerts, alerts.Options{Getenv: env(nil)})
		if err == nil || err.Error() != "alerts.bearerToken: environment variable ALERTS_TOKEN is not set" {
			t.Errorf("unset variable: %v", err)
		}
		var logged []string
		logf := func(f string, args ...any) { logged = append(logged, fmt.Sprintf(f, args...)) }
		if _, err := alerts.NewReceiver(r.eng, s.Alerts, alerts.Options{Getenv: env(map[string]string{"ALERTS_TOKEN": "hunter2"}), Logf: logf}); err != nil {
			t.Fatal(err)
		}
		if len(logged) != 1 || !strings.Contains(logged[0], "alerts.bearerToken is 7 characters long: a short secret can be guessed") || strings.Contains(logged[0], "hunter2") {
			t.Errorf("logged %q, want one warning about the short token, without it", logged)
		}
		// A secret redacted from a journal is never taken as one.
		s.Alerts.BearerToken = spec.RedactedSecret
		if _, err := alerts.NewReceiver(r.eng, s.Alerts, alerts.Options{}); err == nil {
			t.Error("the journal's placeholder was taken as a token")
		}
	})
}

// With tls.clientCA, only clients presenting a certificate that CA signed get through; the
// receiver also refuses requests that did not come over TLS, however it is served.
func TestClientCertificatesAreRequired(t *testing.T) {
	dir := t.TempDir()
	ca := newAuthority(t, "perch test CA")
	cert, key, clientCA := tlsFiles(t, dir, ca)
	s := parseSpec(t, authYAML(fmt.Sprintf("  tls: {cert: %q, key: %q, clientCA: \"${CLIENT_CA}\"}\n", cert, key)))
	r := startEngine(t, s, &world{})
	rcv := newReceiver(t, r.eng, s.Alerts, alerts.Options{Getenv: env(map[string]string{"CLIENT_CA": clientCA}), Logf: t.Logf})
	srv, err := rcv.Listen(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(t.Context())
	if !strings.HasPrefix(srv.URL(), "https://127.0.0.1:") {
		t.Errorf("URL %s, want https://", srv.URL())
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs}}}
	}
	body := payload(firing("alertname", "DiskFull"))

	stranger := newAuthority(t, "another CA").clientCert(t, "mallory")
	for name, c := range map[string]*http.Client{"no certificate": client(), "certificate of another CA": client(stranger)} {
		res, err := c.Post(srv.URL(), "application/json", strings.NewReader(body))
		if err == nil {
			res.Body.Close()
			t.Errorf("%s: answered %s, want the TLS handshake refused", name, res.Status)
		}
	}
	res, err := http.Post(strings.Replace(srv.URL(), "https://", "http://", 1), "application/json", strings.NewReader(body))
	if err == nil {
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP answered %s", res.Status)
		}
	}
	if rec := postAs(rcv, http.MethodPost, "", body); rec.Code != http.StatusUnauthorized {
		t.Errorf("a request that did not come over TLS: %d, want 401", rec.Code)
	}
	if notes := r.notes(); len(notes) != 0 {
		t.Fatalf("refused clients were noted: %q", notes)
	}

	res, err = client(ca.clientCert(t, "alertmanager")).Post(srv.URL(), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("with a certificate the CA signed: %v", err)
	}
	answer, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || string(answer) != "1 noted\n" {
		t.Errorf("with a certificate the CA signed: %s %q, want 200 \"1 noted\"", res.Status, answer)
	}
}

// A flood of alerts that match no rule must cost neither an fsynced note each nor a genuine
// alert's time: an interval notes its first few one by one, then one note per interval sums
// up the rest, and a matching alert in the middle of it all still rolls back at once.
func TestFloodOfUnmatchedAlertsIsSummarised(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := parseSpec(t, rolloutYAML) // analysis.interval: 1s
		r := startEngine(t, spec, &world{})
		var logged []string
		rcv := newReceiver(t, r.eng, spec.Alerts, alerts.Options{Logf: func(f string, args ...any) { logged = append(logged, fmt.Sprintf(f, args...)) }})
		r.waitFor(time.Hour, "running", func(st engine.State) bool { return st.Phase == engine.PhaseRunning })

		names := []string{"HighCPU", "HighCPU", "HighCPU", "DiskFull", "\x1b[2J\x1b[31mEvil\u202e"}
		const flood = 1000 // 100 a second for 10 s
		var rolledBackAt time.Time
		for i := range flood {
			if i == flood/2 {
				rolledBackAt = time.Now()
				if res := post(rcv, payload(firing("alertname", "HighErrorRate", "service", "web"))); !strings.HasPrefix(res.Body.String(), "rolled back") {
					t.Fatalf("the matching alert in the flood: %d %q", res.Code, res.Body.String())
				}
			}
			res := post(rcv, payload(firing("alertname", names[i%len(names)], "instance", strconv.Itoa(i))))
			if res.Code != http.StatusOK {
				t.Fatalf("alert %d: %d %q", i, res.Code, res.Body.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(2 * time.Second) // the last interval's summary
		rcv.Close()

		if rb := r.journal.ofType(engine.EventRollbackStarted); len(rb) != 1 || !rb[0].Time.Equal(rolledBackAt) {
			t.Errorf("rollbacks %+v, want one at once, at %s", rb, rolledBackAt)
		}
		notes := r.journal.ofType(engine.EventNote)
		if len(notes) > 20 {
			t.Errorf("%d notes for %d alerts over 10 intervals: want O(intervals)", len(notes), flood)
		}
		counted := regexp.MustCompile(`^(\d+) alert\(s\) matched no alerts.rollbackOn entry in the last 1s: `)
		one, summed, summaries := 0, 0, 0
		for _, ev := range notes {
			if m := counted.FindStringSubmatch(ev.Reason); m != nil {
				n, _ := strconv.Atoi(m[1])
				summed += n
				summaries++
				if ev.Actor.Name != "alertmanager" || !strings.Contains(ev.Reason, ": HighCPU ×") {
					t.Errorf("summary %q by %+v, want the most frequent name first, by alertmanager", ev.Reason, ev.Actor)
				}
				continue
			}
			one++
		}
		if one+summed != flood || one > 5 || summaries < 9 {
			t.Errorf("%d alerts noted one by one and %d in %d summaries; want all %d, at most 5 one by one", one, summed, summaries, flood)
		}
		for _, ev := range notes {
			if strings.ContainsAny(ev.Reason+ev.Actor.Name, "\x1b\u202e") {
				t.Errorf("a note carries the alert's control characters: %q by %q", ev.Reason, ev.Actor.Name)
			}
		}
		if len(logged) != 0 {
			t.Errorf("logged %q", logged)
		}
	})
}

// Re-sends of the same alerts are repeats whether they were noted one by one or summed up.
func TestSummarisedAlertsAreNotCountedTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := parseSpec(t, rolloutYAML)
		r := startEngine(t, spec, &world{})
		rcv := newReceiver(t, r.eng, spec.Alerts, alerts.Options{})
		var group []alert
		for i := range 8 {
			group = append(group, firing("alertname", "HighCPU", "instance", strconv.Itoa(i)))
		}
		if res := post(rcv, payload(group...)); res.Body.String() != "5 noted; 3 left to the interval's summary\n" {
			t.Errorf("first notification: %q", res.Body.String())
		}
		if res := post(rcv, payload(group...)); res.Body.String() != "0 noted; 8 already noted\n" {
			t.Errorf("the group sent again: %q", res.Body.String())
		}
		time.Sleep(2 * time.Second)
		notes := r.notes()
		if len(notes) != 6 || notes[5] != "alertmanager: 3 alert(s) matched no alerts.rollbackOn entry in the last 1s: HighCPU ×3" {
			t.Errorf("notes %q", notes)
		}
	})
}

// A refused request costs a log line only when it is the first of its interval.
func TestRefusalsAreLoggedInSum(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := parseSpec(t, authYAML("  bearerToken: \"${ALERTS_TOKEN}\"\n"))
		r := startEngine(t, spec, &world{})
		var mu sync.Mutex
		var logged []string
		rcv := newReceiver(t, r.eng, spec.Alerts, alerts.Options{
			Getenv: env(map[string]string{"ALERTS_TOKEN": token}),
			Logf: func(f string, args ...any) {
				mu.Lock()
				defer mu.Unlock()
				logged = append(logged, fmt.Sprintf(f, args...))
			},
		})
		for range 100 {
			postAs(rcv, http.MethodPost, "Bearer guess", payload())
		}
		postAs(rcv, http.MethodPost, "Bearer "+token, "not json")
		time.Sleep(2 * time.Second)
		mu.Lock()
		defer mu.Unlock()
		want := []string{
			"alerts: answered 401 to 192.0.2.1:1234: wrong bearer token",
			"alerts: refused 100 more request(s) in the last 1s, logged only in sum: 401 Unauthorized ×99, 400 Bad Request ×1",
		}
		if strings.Join(logged, "\n") != strings.Join(want, "\n") {
			t.Errorf("logged:\n%s\nwant:\n%s", strings.Join(logged, "\n"), strings.Join(want, "\n"))
		}
	})
}

// A payload beyond 1 MiB is refused with 413 before it is parsed; the server's defaults apply.
func TestOversizePayloadIsRefused(t *testing.T) {
	s := parseSpec(t, rolloutYAML)
	r := startEngine(t, s, &world{})
	rcv := newReceiver(t, r.eng, s.Alerts, alerts.Options{Logf: t.Logf})
	srv, err := rcv.Listen(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(t.Context())
	// padded is a valid payload of size bytes: one alert with a long label.
	padded := func(size int) []byte {
		base := len(payload(firing("alertname", "DiskFull", "pad", "")))
		return []byte(payload(firing("alertname", "DiskFull", "pad", strings.Repeat("x", size-base))))
	}
	for _, tc := range []struct {
		size int
		code int
	}{{1<<20 + 1, http.StatusRequestEntityTooLarge}, {1 << 20, http.StatusOK}} {
		body := padded(tc.size)
		res, err := http.Post(srv.URL(), "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%d bytes: %v", len(body), err)
		}
		answer, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.code {
			t.Errorf("%d bytes: %s %q, want %d", len(body), res.Status, answer, tc.code)
		}
	}
	if notes := r.notes(); len(notes) != 1 {
		t.Errorf("notes %d, want 1 (of the payload within the limit)", len(notes))
	}
}

// blockingBody is a request body that sends nothing until released.
type blockingBody struct{ release chan struct{} }

func (b blockingBody) Read(p []byte) (int, error) {
	<-b.release
	return 0, io.EOF
}

// Payloads beyond MaxConcurrent wait for a slot, at most Timeout, then get 503 and a retry.
func TestConcurrentPayloadsAreCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := parseSpec(t, rolloutYAML)
		r := startEngine(t, spec, &world{})
		rcv := newReceiver(t, r.eng, spec.Alerts, alerts.Options{MaxConcurrent: 1, Timeout: 3 * time.Second})
		slow := blockingBody{make(chan struct{})}
		done := make(chan int)
		go func() {
			rec := httptest.NewRecorder()
			rcv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", slow))
			done <- rec.Code
		}()
		synctest.Wait()
		start := time.Now()
		res := post(rcv, payload(firing("alertname", "DiskFull")))
		if res.Code != http.StatusServiceUnavailable || res.Header().Get("Retry-After") == "" || time.Since(start) != 3*time.Second {
			t.Errorf("second payload: %d %q after %s, want 503 with Retry-After after 3s", res.Code, res.Body.String(), time.Since(start))
		}
		close(slow.release)
		<-done
		if res := post(rcv, payload(firing("alertname", "DiskFull"))); res.Code != http.StatusOK {
			t.Errorf("once the slot is free: %d %q", res.Code, res.Body.String())
		}
	})
}
