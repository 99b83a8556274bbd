package judgeapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/internal/printable"
	"github.com/perchhq/perch/metrics"
)

// Defaults and limits of a Server.
const (
	DefaultMaxRuns     = 10000
	DefaultRunTTL      = 24 * time.Hour
	DefaultLookTimeout = 8 * time.Second // under the 10 s Argo Rollouts' web provider waits by default
	DefaultMaxInFlight = 16
	// MaxRunID is the longest run id a caller may pass (and Flagger's namespace/name/checksum).
	MaxRunID = 256
	// MaxBody is the largest request body read: Flagger's payload is a few hundred bytes.
	MaxBody = 64 << 10
)

// Source is where the checks' samples come from (an engine.Source).
type Source interface {
	Samples(ctx context.Context, q metrics.Query, start, end time.Time, step time.Duration) ([]metrics.Sample, error)
}

// Config is what a Server judges and how far callers may push it.
type Config struct {
	Judges *spec.Judges // validated (spec.LoadJudges)
	Source Source
	// Token, when set, must come as "Authorization: Bearer TOKEN" on every endpoint but
	// /healthz (or, from Flagger, as the payload's metadata "token").
	Token string
	// MaxRuns and RunTTL bound the runs remembered (0: the defaults).
	MaxRuns int
	RunTTL  time.Duration
	// LookTimeout bounds the source's answer to one ask (0: DefaultLookTimeout).
	LookTimeout time.Duration
	// MaxInFlight is how many asks are judged at once; more are refused with 503 (0:
	// DefaultMaxInFlight).
	MaxInFlight int
	// Log, if set, gets one line per verdict given.
	Log func(format string, args ...any)
}

// Server answers other controllers with perch's verdicts. It is an http.Handler.
type Server struct {
	cfg      Config
	interval time.Duration
	analyses map[string]*analysis
	runs     *runs
	slots    chan struct{}
	mux      *http.ServeMux
}

// analysis is one named analysis, its judges built once.
type analysis struct {
	name   string
	checks []spec.Check
	judges []metrics.Judge
}

// New builds a server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Judges == nil || cfg.Source == nil {
		return nil, errors.New("judgeapi: a judges file and a metrics source are needed")
	}
	cfg.MaxRuns = orDefault(cfg.MaxRuns, DefaultMaxRuns)
	cfg.MaxInFlight = orDefault(cfg.MaxInFlight, DefaultMaxInFlight)
	cfg.RunTTL = orDefault(cfg.RunTTL, DefaultRunTTL)
	cfg.LookTimeout = orDefault(cfg.LookTimeout, DefaultLookTimeout)
	s := &Server{
		cfg:      cfg,
		interval: time.Duration(cfg.Judges.Analysis.Interval),
		analyses: map[string]*analysis{},
		runs:     newRuns(cfg.MaxRuns, cfg.RunTTL),
		slots:    make(chan struct{}, cfg.MaxInFlight),
		mux:      http.NewServeMux(),
	}
	for name, a := range cfg.Judges.Analyses {
		an := &analysis{name: name, checks: a.Checks}
		for _, c := range a.Checks {
			judge := c.Judge
			if judge == "" {
				judge = cfg.Judges.Analysis.Judge
			}
			j, err := metrics.New(judge, c.JudgeOptions)
			if err != nil {
				return nil, fmt.Errorf("analysis %s, check %s: %w", name, c.Name, err)
			}
			an.judges = append(an.judges, j)
		}
		s.analyses[name] = an
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	s.mux.Handle("GET /v1/analyses/{name}/verdict", s.authorized(s.argo))
	s.mux.HandleFunc("POST /v1/flagger/{name}", s.flagger) // the token may be in the payload
	s.mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: GET /v1/analyses/NAME/verdict?run=RUN, POST /v1/flagger/NAME, GET /healthz")
	})
	return s, nil
}

func orDefault[T int | time.Duration](v, d T) T {
	if v <= 0 {
		return d
	}
	return v
}

// ServeHTTP serves the endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	s.mux.ServeHTTP(w, r)
}

// Runs is how many runs the server remembers.
func (s *Server) Runs() int { return s.runs.len() }

// authorized refuses a request without the token, when there is one.
func (s *Server) authorized(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.bearer(r) {
			refuse(w)
			return
		}
		next(w, r)
	})
}

// bearer reports whether r carries the token as a bearer token, or no token is needed.
func (s *Server) bearer(r *http.Request) bool {
	if s.cfg.Token == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && s.tokenIs(got)
}

func (s *Server) tokenIs(got string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) == 1
}

func refuse(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="perch judge"`)
	writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
}

// runPattern is what a run id may hold: Kubernetes names, namespace/name pairs, hashes and
// Argo Rollouts' templated arguments.
var runPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]*$`)

func checkRunID(id string) error {
	switch {
	case id == "":
		return errors.New("missing run id")
	case len(id) > MaxRunID:
		return fmt.Errorf("run id of %d bytes: at most %d", len(id), MaxRunID)
	case !runPattern.MatchString(id):
		return errors.New("run id: use letters, digits, '.', '_', ':', '/' and '-' only")
	}
	return nil
}

// Verdict is the answer to an ask: the analysis's verdict with every check's.
type Verdict struct {
	Verdict  metrics.Verdict `json:"verdict"`
	Reason   string          `json:"reason"`
	Analysis string          `json:"analysis"`
	Run      string          `json:"run"`
	// Since is when the run first asked: its window opened then.
	Since  time.Time            `json:"since"`
	Checks []engine.CheckResult `json:"checks"`
}

// analysisFor finds the named analysis, answering 404 if there is none.
func (s *Server) analysisFor(w http.ResponseWriter, r *http.Request) *analysis {
	name := r.PathValue("name")
	a, ok := s.analyses[name]
	if !ok {
		if len(name) > spec.MaxAnalysisName {
			name = name[:spec.MaxAnalysisName] + "…"
		}
		writeError(w, http.StatusNotFound, fmt.Sprintf("no analysis %q", printable.Line(name)))
		return nil
	}
	return a
}

// argo answers Argo Rollouts' web metric provider: the verdict as JSON, 200 whatever it is
// (the AnalysisTemplate's conditions read it).
func (s *Server) argo(w http.ResponseWriter, r *http.Request) {
	a := s.analysisFor(w, r)
	if a == nil {
		return
	}
	id := r.URL.Query().Get("run")
	if err := checkRunID(id); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	v, ok := s.verdict(w, r, a, id)
	if !ok {
		return
	}
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	// Reasons quote the source's errors: escape the controls encoding/json leaves raw.
	w.Write(append(printable.JSON(body), '\n'))
}

// flaggerPayload is the body Flagger posts to a webhook
// (https://docs.flagger.app/usage/webhooks, "Webhook payload"); checksum identifies the
// canary's revision (Flagger's CanaryWebhookPayload).
type flaggerPayload struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Phase     string            `json:"phase"`
	Checksum  string            `json:"checksum"`
	Metadata  map[string]string `json:"metadata"`
}

// Flagger's hooks that take a verdict: the gates, which go on when the answer is 2xx, and
// rollback, which rolls the canary back when it is.
const (
	hookConfirmTrafficIncrease = "confirm-traffic-increase"
	hookConfirmPromotion       = "confirm-promotion"
	hookRollback               = "rollback"
)

// flagger answers one of Flagger's webhooks: 200 when the analysis passes, 403 otherwise; for
// the rollback hook (?hook=rollback), where 200 means "roll back", 200 when it fails.
func (s *Server) flagger(w http.ResponseWriter, r *http.Request) {
	hook := r.URL.Query().Get("hook")
	switch hook {
	case "", hookConfirmTrafficIncrease, hookConfirmPromotion, hookRollback:
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("hook %q: perch answers confirm-traffic-increase, confirm-promotion and rollback hooks", printable.Line(truncate(hook, 64))))
		return
	}
	var p flaggerPayload
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	if err := dec.Decode(&p); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", MaxBody))
			return
		}
		writeError(w, http.StatusBadRequest, "want Flagger's webhook payload, {\"name\", \"namespace\", …}: "+printable.Line(truncate(err.Error(), 200)))
		return
	}
	// Flagger sends no headers of its own choosing: a webhook's metadata is how it can carry
	// the token.
	if !s.bearer(r) && !s.tokenIs(p.Metadata["token"]) {
		refuse(w)
		return
	}
	if p.Name == "" || p.Namespace == "" {
		writeError(w, http.StatusBadRequest, "the payload needs the canary's name and namespace")
		return
	}
	a := s.analysisFor(w, r)
	if a == nil {
		return
	}
	id := p.Namespace + "/" + p.Name
	if p.Checksum != "" {
		id += "/" + p.Checksum
	}
	if err := checkRunID(id); err != nil {
		writeError(w, http.StatusBadRequest, "canary "+err.Error())
		return
	}
	v, ok := s.verdict(w, r, a, id)
	if !ok {
		return
	}
	pass := v.Verdict == metrics.Pass
	if hook == hookRollback {
		pass = v.Verdict == metrics.Fail // 2xx rolls the canary back
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !pass {
		w.WriteHeader(http.StatusForbidden)
	}
	fmt.Fprintf(w, "%s: %s\n", v.Verdict, printable.Line(v.Reason)) // Flagger shows it in its events
}

// verdict judges analysis a for run id over the run's window, or answers the error itself.
func (s *Server) verdict(w http.ResponseWriter, r *http.Request, a *analysis, id string) (Verdict, bool) {
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "too many asks at once; ask again")
		return Verdict{}, false
	}
	now := time.Now()
	since := s.runs.ask(runKey{analysis: a.name, run: id}, now)
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.LookTimeout)
	defer cancel()
	v := s.judge(ctx, a, since, now)
	v.Run = id
	if s.cfg.Log != nil {
		s.cfg.Log("%s %s: %s: %s", a.name, id, v.Verdict, printable.Line(v.Reason))
	}
	return v, true
}

// judge looks at every check of a over the window since, as the engine looks at a step's:
// the first point covers the first whole interval after the window opened.
func (s *Server) judge(ctx context.Context, a *analysis, since, now time.Time) Verdict {
	v := Verdict{Analysis: a.name, Since: since.UTC(), Checks: make([]engine.CheckResult, len(a.checks))}
	start := since.Add(s.interval)
	if now.Before(start) {
		reason := fmt.Sprintf("too early: the first interval (%s) ends at %s", spec.Duration(s.interval), start.UTC().Format(time.RFC3339))
		for i, c := range a.checks {
			nan := metrics.Number(math.NaN())
			v.Checks[i] = engine.CheckResult{Check: c.Name, LastCanary: nan, LastBaseline: nan,
				Result: metrics.Result{Verdict: metrics.Inconclusive, Reason: reason, Canary: nan, Baseline: nan, Deviation: nan}}
		}
		v.Verdict, v.Reason = metrics.Inconclusive, reason
		return v
	}
	var wg sync.WaitGroup
	for i := range a.checks {
		wg.Go(func() {
			// Every check of the analysis is one test of the family: the false-alarm budget
			// holds per run, as perch analyze's does per input.
			v.Checks[i] = engine.JudgeCheck(ctx, s.cfg.Source, a.checks[i], a.judges[i], len(a.checks), start, now, s.interval, -1)
		})
	}
	wg.Wait()
	v.Verdict, v.Reason = sum(v.Checks)
	return v
}

// sum is the analysis's verdict from its checks': fail if any fails, pass if all pass,
// inconclusive otherwise (a source that failed makes its check inconclusive, never a pass).
func sum(checks []engine.CheckResult) (metrics.Verdict, string) {
	var failing, inconclusive []string
	for _, c := range checks {
		//exhaustive:enforce
		switch c.Verdict {
		case metrics.Pass:
		case metrics.Fail:
			failing = append(failing, fmt.Sprintf("%s failed: %s", c.Check, c.Reason))
		case metrics.Inconclusive:
			inconclusive = append(inconclusive, fmt.Sprintf("%s inconclusive: %s", c.Check, c.Reason))
		default:
			inconclusive = append(inconclusive, fmt.Sprintf("%s: verdict %q", c.Check, c.Verdict))
		}
	}
	switch {
	case len(failing) > 0:
		return metrics.Fail, strings.Join(failing, "; ")
	case len(inconclusive) > 0:
		return metrics.Inconclusive, strings.Join(inconclusive, "; ")
	}
	return metrics.Pass, "every check passed"
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// writeError answers with status and {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
