package proxyd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/providers/proxy"
	"github.com/perchhq/perch/providers/proxy/admin"
)

// Bounds of the admin API: request bodies, and how long a samples query may take.
const (
	maxAdminBody   = 64 << 10
	samplesTimeout = 30 * time.Second
)

// adminHandler serves the admin API (see package admin for its routes).
func (d *Daemon) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+admin.PathHealth, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	mux.HandleFunc("GET "+admin.PathWeight, d.getWeight)
	mux.HandleFunc("PUT "+admin.PathWeight, d.putWeight)
	mux.HandleFunc("GET "+admin.PathSegments, d.getSegments)
	mux.HandleFunc("PUT "+admin.PathSegments, d.putSegments)
	mux.HandleFunc("GET "+admin.PathSamples, d.getSamples)
	mux.HandleFunc("GET "+admin.PathHistogram, d.getHistogram)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case admin.PathWeight, admin.PathSegments:
			w.Header().Set("Allow", "GET, PUT")
			writeProblem(w, http.StatusMethodNotAllowed, r.Method+" "+r.URL.Path+": use GET or PUT")
			return
		case admin.PathSamples, admin.PathHistogram, admin.PathHealth:
			w.Header().Set("Allow", "GET")
			writeProblem(w, http.StatusMethodNotAllowed, r.Method+" "+r.URL.Path+": use GET")
			return
		}
		writeProblem(w, http.StatusNotFound, fmt.Sprintf("no %s %s here: the admin API has %s, %s, %s, %s and %s", r.Method, r.URL.Path,
			admin.PathWeight, admin.PathSegments, admin.PathSamples, admin.PathHistogram, admin.PathHealth))
	})
	return d.guard(mux)
}

// guard lets a request through only from the socket's own user (or root), with the token if
// one is set (the health check excepted), and with a bounded body.
func (d *Daemon) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := peerAllowed(r.Context(), d.uid); !ok {
			d.log.Warn("admin: refused a connection from another user", "uid", p.uid, "known", p.known, "path", r.URL.Path)
			writeProblem(w, http.StatusForbidden, "the admin socket answers only the user the proxy runs as, and root")
			return
		}
		if r.URL.Path != admin.PathHealth {
			if want := d.adminToken.Load(); want != nil && !bearerMatches(r.Header.Get("Authorization"), want) {
				d.log.Warn("admin: refused a request without the right token", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
				w.Header().Set("WWW-Authenticate", `Bearer realm="perch proxy"`)
				writeProblem(w, http.StatusUnauthorized, "missing or wrong bearer token")
				return
			}
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxAdminBody)
		next.ServeHTTP(w, r)
	})
}

// bearerMatches compares "Bearer TOKEN" with the token's hash in constant time (hashing first,
// so neither the token's length nor its prefix shows in the time taken).
func bearerMatches(header string, want *[32]byte) bool {
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

func (d *Daemon) getWeight(w http.ResponseWriter, r *http.Request) {
	n, err := d.front.proxy.Load().Weight(r.Context())
	if err != nil {
		writeProblem(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, admin.Weight{CanaryPercent: n})
}

func (d *Daemon) putWeight(w http.ResponseWriter, r *http.Request) {
	var in admin.Weight
	if !decodeBody(w, r, &in) {
		return
	}
	if in.CanaryPercent < 0 || in.CanaryPercent > 100 {
		writeProblem(w, http.StatusBadRequest, fmt.Sprintf("canaryPercent %d outside 0..100", in.CanaryPercent))
		return
	}
	n, was, err := d.setWeight(r.Context(), in.CanaryPercent)
	if err != nil {
		d.log.Error("admin: weight not changed", "canaryPercent", in.CanaryPercent, "error", err)
		writeProblem(w, http.StatusInternalServerError, err.Error())
		return
	}
	if n != was {
		d.log.Info("weight set", "canaryPercent", n, "was", was)
	}
	writeJSON(w, http.StatusOK, admin.Weight{CanaryPercent: n})
}

func (d *Daemon) getSegments(w http.ResponseWriter, _ *http.Request) {
	d.mu.Lock()
	segs := d.segments
	d.mu.Unlock()
	writeJSON(w, http.StatusOK, admin.Segments{Segments: segs})
}

func (d *Daemon) putSegments(w http.ResponseWriter, r *http.Request) {
	var in admin.Segments
	if !decodeBody(w, r, &in) {
		return
	}
	if in.Segments == nil {
		writeProblem(w, http.StatusBadRequest, `want {"segments": [...]}`)
		return
	}
	if err := admin.CheckSegments(in.Segments); err != nil {
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}
	for i, s := range in.Segments {
		var b bytes.Buffer
		if err := json.Compact(&b, s.Match); err == nil {
			in.Segments[i].Match = b.Bytes()
		}
	}
	if err := d.setSegments(in.Segments); err != nil {
		d.log.Error("admin: segments not changed", "error", err)
		writeProblem(w, http.StatusInternalServerError, err.Error())
		return
	}
	d.log.Info("segments set", "count", len(in.Segments))
	writeJSON(w, http.StatusOK, in)
}

func (d *Daemon) getSamples(w http.ResponseWriter, r *http.Request) {
	d.query(w, r, func(ctx context.Context, src *proxy.Source, q metrics.Query, start, end time.Time, step time.Duration) (any, error) {
		samples, err := src.Samples(ctx, q, start, end, step)
		if samples == nil {
			samples = []metrics.Sample{}
		}
		return admin.Samples{Samples: samples}, err
	})
}

func (d *Daemon) getHistogram(w http.ResponseWriter, r *http.Request) {
	d.query(w, r, func(ctx context.Context, src *proxy.Source, q metrics.Query, start, end time.Time, step time.Duration) (any, error) {
		h, err := src.Histogram(ctx, q, start, end, step)
		if h.Points == nil {
			h.Points = []metrics.HistogramPoint{}
		}
		return h, err
	})
}

// query reads a query of the builtin source (query, start, end, step) and answers it with ask.
func (d *Daemon) query(w http.ResponseWriter, r *http.Request,
	ask func(ctx context.Context, src *proxy.Source, q metrics.Query, start, end time.Time, step time.Duration) (any, error)) {
	q := r.URL.Query()
	expr := q.Get("query")
	start, err1 := parseTime(q.Get("start"))
	end, err2 := parseTime(q.Get("end"))
	step, err3 := parseStep(q.Get("step"))
	if err := errors.Join(err1, err2, err3); err != nil || expr == "" {
		if err == nil {
			err = errors.New("query: missing")
		}
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), samplesTimeout)
	defer cancel()
	answer, err := ask(ctx, d.front.proxy.Load().Source(), metrics.Query{Expr: expr}, start, end, step)
	switch {
	case err != nil && ctx.Err() != nil:
		writeProblem(w, http.StatusServiceUnavailable, err.Error())
		return
	case err != nil:
		writeProblem(w, http.StatusBadRequest, err.Error()) // the query, its times or its step
		return
	}
	writeJSON(w, http.StatusOK, answer)
}

// parseTime reads an RFC 3339 time or Unix seconds.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("start and end: want RFC 3339 times or Unix seconds")
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time or Unix seconds", s)
	}
	return time.Unix(0, int64(f*1e9)), nil
}

// parseStep reads a Go duration or seconds.
func parseStep(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 {
		return time.Duration(f * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("step %q: want a positive duration (30s) or seconds", s)
}

// decodeBody reads a JSON request body into v, refusing unknown fields; false means it
// answered already.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeProblem(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", tooBig.Limit))
			return false
		}
		writeProblem(w, http.StatusBadRequest, "bad JSON: "+err.Error())
		return false
	}
	if dec.More() {
		writeProblem(w, http.StatusBadRequest, "bad JSON: more than one value")
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeProblem(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, admin.Problem{Error: msg})
}
