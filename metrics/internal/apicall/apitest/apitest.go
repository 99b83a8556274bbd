// Package apitest helps test perch's hosted metrics sources against fakes of their APIs.
package apitest

import (
	"net/http"
	"net/http/httptest"
)

// Transport answers requests by calling h directly, with no network: for tests that run a
// source inside a testing/synctest bubble, where the fake's time is the bubble's.
func Transport(h http.Handler) http.RoundTripper { return handlerTransport{h} }

type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}
