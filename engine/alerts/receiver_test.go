package alerts_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/alerts"
)

// alert is one alert of a test payload.
type alert struct {
	status   string
	labels   map[string]string
	summary  string
	startsAt time.Time
}

func firing(labels ...string) alert   { return alert{status: "firing", labels: pairs(labels)} }
func resolved(labels ...string) alert { return alert{status: "resolved", labels: pairs(labels)} }

func pairs(kv []string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// payload is an Alertmanager webhook body (version 4) holding the alerts.
func payload(as ...alert) string {
	type jsonAlert struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		StartsAt    time.Time         `json:"startsAt"`
	}
	body := struct {
		Version string      `json:"version"`
		Status  string      `json:"status"`
		Alerts  []jsonAlert `json:"alerts"`
	}{Version: "4", Status: "firing"}
	for _, a := range as {
		ann := map[string]string{}
		if a.summary != "" {
			ann["summary"] = a.summary
		}
		body.Alerts = append(body.Alerts, jsonAlert{a.status, a.labels, ann, a.startsAt})
	}
	b, _ := json.Marshal(body)
	return string(b)
}

func post(h http.Handler, body string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)))
	return rec
}

func TestMatchingAlertRollsBackAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := parseSpec(t, rolloutYAML)
		r := startEngine(t, spec, &world{})
		rcv := newReceiver(t, r.eng, spec.Alerts, alerts.Options{})
		r.waitFor(time.Hour, "step 2", func(st engine.State) bool { return st.Step == 1 })

		a := firing("alertname", "HighErrorRate", "service", "web", "team", "payments")
		a.summary = "5xx above 5% for 2m"
		before := time.Now()
		res := post(rcv, payload(a))
		if res.Code != http.StatusOK || !strings.Contains(res.Body.String(), "rolled back for HighErrorRate") {
			t.Fatalf("answer %d %q, want 200 and the rollback", res.Code, res.Body.String())
		}
		st := r.waitFor(time.Minute, "rolled back", func(st engine.State) bool { return st.Phase == engine.PhaseRolledBack })
		started := r.journal.ofType(engine.EventRollbackStarted)
		if len(started) != 1 || !started[0].Time.Equal(before) {
			t.Fatalf("rollback events %+v, want one, at once (at %s)", started, before)
		}
		want := engine.Actor{Name: "alertmanager/HighErrorRate", Role: engine.RoleOperator, Source: "alertmanager"}
		if *st.EndedBy != want || st.EndReason != "HighErrorRate firing: 5xx above 5% for 2m" {
			t.Errorf("ended by %+v: %q; want %+v: the alert's name and summary", *st.EndedBy, st.EndReason, want)
		}
		if st.Steps[1].Status != engine.StepFailed {
			t.Errorf("step 2 is %s, want failed (the command was sent for the step the rollout was at)", st.Steps[1].Status)
		}
		if refused := r.journal.ofType(engine.EventCommandRefused); len(refused) > 0 {
			t.Errorf("commands refused: %+v", refused)
		}
	})
}

func TestAlertsThatDoNotRollBackAreNoted(t *testing.T) {
	tests := []struct {
		name  string
		alert alert
		note  string
	}{
		{"resolved matching alert", resolved("alertname", "HighErrorRate", "service", "web"),
			"alertmanager/HighErrorRate: HighErrorRate resolved"},
		{"firing alert with a label missing", firing("alertname", "HighErrorRate", "service", "api"),
			"alertmanager/HighErrorRate: HighErrorRate firing (matches no alerts.rollbackOn entry)"},
		{"firing alert with another value", alert{status: "firing", labels: map[string]string{"alertname": "DiskFull", "severity": "ticket"}, summary: "disk 91% full"},
			"alertmanager/DiskFull: DiskFull firing: disk 91% full (matches no alerts.rollbackOn entry)"},
		{"unnamed alert", firing("severity", "warning"),
			"alertmanager/unnamed: unnamed firing (matches no alerts.rollbackOn entry)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				spec := parseSpec(t, rolloutYAML)
				r := startEngine(t, spec, &world{})
				rcv := newReceiver(t, r.eng, spec.Alerts, alerts.Options{})
				r.waitFor(time.Hour, "running", func(st engine.State) bool { return st.Phase == engine.PhaseRunning })
				if res := post(rcv, payload(tc.alert)); res.Code != http.StatusOK || res.Body.String() != "1 noted\n" {
					t.Fatalf("answer %d %q, want 200 \"1 noted\"", res.Code, res.Body.String())
				}
				// Alertmanager sends a group's alerts again when the group changes: noted once.
				if res := post(rcv, payload(tc.alert)); res.Code != http.StatusOK || res.Body.String() != "0 noted; 1 already noted\n" {
					t.Fatalf("repeat answered %d %q", res.Code, res.Body.String())
				}
				if got := r.notes(); !slices.Equal(got, []string{tc.note}) {
					t.Errorf("notes %q, want [%q]", got, tc.note)
				}
				if st := r.eng.Snapshot(); st.Phase != engine.PhaseRunning {
					t.Errorf("phase %s, want running", st.Phase)
				}
			})
		})
	}
}

func TestRefiredAlertIsNotedAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := parseSpec(t, rolloutYAML)
		r := startEngine(t, spec, &world{})
		rcv := newReceiver(t, r.eng, spec.Alerts, alerts.Options{})
		a := firing("alertname", "DiskFull")
		a.startsAt = time.Now()
		post(rcv, payload(a))
		time.Sleep(time.Minute)
		a.startsAt = time.Now() // resolved and fired again: a new occurrence
		post(rcv, payload(a))
		if got := r.notes(); len(got) != 2 {
			t.Errorf("notes %q, want one per occurrence", got)
		}
	})
}

func TestMatchingAlertWhenRollbackIsUnderWay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := parseSpec(t, rolloutYAML)
		r := startEngine(t, spec, &world{holdRollback: true})
		rcv := newReceiver(t, r.eng, spec.Alerts, alerts.Options{})
		r.waitFor(time.Hour, "running", func(st engine.State) bool { return st.Phase == engine.PhaseRunning })
		// Two matching alerts arrive at once, in two requests (two Alertmanager groups).
		var wg sync.WaitGroup
		answers := make([]string, 2)
		for i, name := range []string{"HighErrorRate", "LatencyBurn"} {
			wg.Go(func() {
				answers[i] = post(rcv, payload(firing("alertname", name, "service", "web", "severity", "page"))).Body.String()
			})
		}
		wg.Wait()
		if st := r.eng.Snapshot(); st.Phase != engine.PhaseRollingBack {
			t.Fatalf("phase %s, want rolling_back (the provider refuses 0%%)", st.Phase)
		}
		if n := len(r.journal.ofType(engine.EventRollbackStarted)); n != 1 {
			t.Errorf("%d rollbacks started, want 1", n)
		}
		if refused := r.journal.ofType(engine.EventCommandRefused); len(refused) > 0 {
			t.Errorf("the engine refused %+v: the receiver should have noted the second alert instead", refused)
		}
		notes := r.notes()
		if len(notes) != 1 || !strings.HasSuffix(notes[0], "firing; it matches alerts.rollbackOn but the rollout is already rolling back") {
			t.Errorf("notes %q, want the second alert noted as already rolling back", notes)
		}
		slices.Sort(answers)
		if answers[0] != "1 noted\n" || !strings.HasPrefix(answers[1], "rolled back for ") {
			t.Errorf("answers %q", answers)
		}
	})
}

func TestRollbacksComeBeforeNotes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := parseSpec(t, rolloutYAML)
		r := startEngine(t, spec, &world{})
		rcv := newReceiver(t, r.eng, spec.Alerts, alerts.Options{})
		res := post(rcv, payload(
			resolved("alertname", "Old"),
			firing("alertname", "Other"),
			firing("alertname", "Paging", "severity", "page"),
		))
		if res.Code != http.StatusOK || res.Body.String() != "rolled back for Paging; 2 noted\n" {
			t.Fatalf("answer %d %q", res.Code, res.Body.String())
		}
		rb := r.journal.ofType(engine.EventRollbackStarted)
		notes := r.journal.ofType(engine.EventNote)
		if len(rb) != 1 || len(notes) != 2 || rb[0].Seq > notes[0].Seq {
			t.Errorf("rollback %+v and notes %+v: want the rollback journaled first", rb, notes)
		}
	})
}

func TestTruncatedAlertsAreNoted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := parseSpec(t, rolloutYAML)
		r := startEngine(t, spec, &world{})
		rcv := newReceiver(t, r.eng, spec.Alerts, alerts.Options{})
		res := post(rcv, `{"version":"4","status":"firing","truncatedAlerts":7,"alerts":[]}`)
		notes := r.notes()
		if res.Code != http.StatusOK || len(notes) != 1 || !strings.Contains(notes[0], "left 7 alert(s) out") {
			t.Errorf("answer %d, notes %q: want the truncation noted", res.Code, notes)
		}
	})
}

func TestReceiverHTTP(t *testing.T) {
	tests := []struct {
		name   string
		method string
		body   string
		code   int
		answer string
	}{
		{"get", http.MethodGet, "", http.StatusMethodNotAllowed, "method not allowed: POST Alertmanager's webhook payload here\n"},
		{"put", http.MethodPut, payload(), http.StatusMethodNotAllowed, "method not allowed"},
		{"too large", http.MethodPost, `{"version":"4","alerts":[],"pad":"` + strings.Repeat("x", 1024) + `"}`, http.StatusRequestEntityTooLarge, "payload over 1000 bytes\n"},
		{"not json", http.MethodPost, "alertname=HighErrorRate", http.StatusBadRequest, "invalid JSON: invalid character 'a' looking for beginning of value\n"},
		{"empty", http.MethodPost, "", http.StatusBadRequest, "invalid JSON: EOF\n"},
		{"version 3", http.MethodPost, `{"version":"3","alerts":[]}`, http.StatusBadRequest, `unsupported payload version "3": perch reads Alertmanager's webhook payload version "4"` + "\n"},
		{"bad status", http.MethodPost, `{"version":"4","alerts":[{"status":"pending","labels":{"a":"b"}}]}`, http.StatusBadRequest, `alerts[0]: status "pending": want "firing" or "resolved"` + "\n"},
		{"no alerts", http.MethodPost, payload(), http.StatusOK, "0 noted\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				spec := parseSpec(t, rolloutYAML)
				r := startEngine(t, spec, &world{})
				var logged []string
				rcv := newReceiver(t, r.eng, spec.Alerts, alerts.Options{MaxBody: 1000, Logf: func(f string, args ...any) {
					logged = append(logged, f)
				}})
				rec := httptest.NewRecorder()
				rcv.ServeHTTP(rec, httptest.NewRequest(tc.method, "/alerts", strings.NewReader(tc.body)))
				if rec.Code != tc.code || !strings.HasPrefix(rec.Body.String(), tc.answer) {
					t.Errorf("answer %d %q, want %d %q", rec.Code, rec.Body.String(), tc.code, tc.answer)
				}
				if tc.code == http.StatusMethodNotAllowed && rec.Header().Get("Allow") != http.MethodPost {
					t.Errorf("Allow: %q, want POST", rec.Header().Get("Allow"))
				}
				if (tc.code == http.StatusBadRequest || tc.code == http.StatusRequestEntityTooLarge) && len(logged) != 1 {
					t.Errorf("logged %q, want the refusal logged once", logged)
				}
				if n := len(r.notes()) + len(r.journal.ofType(engine.EventRollbackStarted)); n != 0 {
					t.Errorf("%d events from a payload that had no alerts or was refused", n)
				}
			})
		})
	}
}

// An engine that does not take commands (stopped, or stuck) must not hold Alertmanager up:
// the receiver answers 503 after its timeout, and Alertmanager sends the payload again.
func TestReceiverIsBoundedInTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := parseSpec(t, rolloutYAML)
		eng, err := engine.New(engine.Config{Spec: spec, Router: &world{}, Source: &world{}})
		if err != nil {
			t.Fatal(err)
		}
		rcv := newReceiver(t, eng, spec.Alerts, alerts.Options{Timeout: 3 * time.Second})
		for _, body := range []string{payload(firing("severity", "page")), payload(resolved("alertname", "X"))} {
			start := time.Now()
			res := post(rcv, body)
			if res.Code != http.StatusServiceUnavailable || time.Since(start) != 3*time.Second {
				t.Errorf("answer %d %q after %s; want 503 after the 3s timeout", res.Code, res.Body.String(), time.Since(start))
			}
		}
		// A request cancelled by Alertmanager ends at once too.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		rec := httptest.NewRecorder()
		start := time.Now()
		rcv.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodPost, "/", strings.NewReader(payload(firing("severity", "page")))))
		if rec.Code != http.StatusServiceUnavailable || time.Since(start) != 0 {
			t.Errorf("cancelled request: %d after %s", rec.Code, time.Since(start))
		}
	})
}
