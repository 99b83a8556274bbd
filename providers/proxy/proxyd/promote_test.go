package proxyd

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/perchhq/perch/providers/internal/rollouttest"
	"github.com/perchhq/perch/providers/proxy/admin"
)

// handlerTransport hands each request to the admin API's handler in memory.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	return rec.Result(), nil
}

// TestEngineRollsOutThroughTheAdminAPI runs a whole rollout through the admin client against a
// running proxy's admin API. The client reaches the API's handler in memory, so the test runs
// in a synctest bubble and the rollout's minutes of analysis pass in virtual time; the weight
// each step confirmed is the proxy's, and persisted.
func TestEngineRollsOutThroughTheAdminAPI(t *testing.T) {
	w := newWorld(t)
	d := w.start(w.file())
	handler := d.adminHandler()
	synctest.Test(t, func(t *testing.T) {
		spec := rollouttest.Spec(t, "  proxy: {admin: \"unix://"+w.socket()+"\"}")
		c, err := admin.New(admin.Config{Address: spec.Traffic.Proxy.Admin, Transport: handlerTransport{handler}})
		if err != nil {
			t.Fatal(err)
		}
		if got := rollouttest.Promote(t, spec, c); !slices.Equal(got, []int{10, 50, 100}) {
			t.Errorf("confirmed weights = %v, want [10 50 100]", got)
		}
	})
	st, found, err := loadState(w.config(w.file()).State)
	if err != nil || !found || st.CanaryPercent != 100 {
		t.Errorf("state after promotion: %+v, %v, %v; want 100%%", st, found, err)
	}
}
