package control

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/fleet"
)

// fakeFleet is two running rollouts (web, api), one waiting (eu) and one invalid file.
type fakeFleet struct {
	statuses []fleet.Status
	targets  map[string]*target
}

func (f *fakeFleet) Statuses() []fleet.Status { return f.statuses }

func (f *fakeFleet) Rollout(name string) (fleet.Rollout, bool) {
	t, ok := f.targets[name]
	if !ok {
		return nil, false
	}
	return subscribable{t}, true
}

// subscribable gives a target the Subscribe a fleet.Rollout has.
type subscribable struct{ *target }

func (subscribable) Subscribe() (<-chan engine.State, func()) { return nil, func() {} }

func newFakeFleet(t *testing.T) *fakeFleet {
	web, api := newTarget(t), newTarget(t)
	api.st.Weight, api.st.Step = 10, 0
	f := &fakeFleet{targets: map[string]*target{"web": web, "api": api}}
	f.statuses = []fleet.Status{
		{Name: "api", State: api.st, Journal: "api.jsonl"},
		{Name: "bad", File: "bad.yaml", Invalid: "bad.yaml:3:1: steps: missing"},
		{Name: "eu", Waiting: []string{"web"}, DependsOn: []string{"web"}},
		{Name: "us", Cancelled: "web rolled back"},
		{Name: "web", State: web.st, Journal: "web.jsonl"},
	}
	return f
}

func startFleet(t *testing.T, f Fleet) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f.sock")
	s, err := ListenFleet(path, f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return path
}

func TestFleetVerbsByName(t *testing.T) {
	f := newFakeFleet(t)
	path := startFleet(t, f)
	resp := send(t, path, Request{Command: "pause", Rollout: "api", Reason: "look"})
	if !resp.OK || resp.Status == nil || resp.Status.Journal != "api.jsonl" {
		t.Fatalf("pause api: %+v", resp)
	}
	if got := f.targets["api"].commands(); len(got) != 1 || got[0].Kind != engine.CommandPause || got[0].Reason != "look" {
		t.Errorf("api got %+v", got)
	}
	if got := f.targets["web"].commands(); len(got) != 0 {
		t.Errorf("web got %+v, want nothing", got)
	}
	for _, tc := range []struct {
		req        Request
		code, want string
	}{
		{Request{Command: "pause"}, "ambiguous", "2 rollouts run here; name one (perch pause NAME): api, web"},
		{Request{Command: "pause", Rollout: "nope"}, "not_found", `no rollout "nope" here; there are: api, bad, eu, us, web`},
		{Request{Command: "pause", Rollout: "eu"}, "not_running", "eu has not started (waiting for web to promote)"},
		{Request{Command: "pause", Rollout: "us"}, "not_running", "us has not started (cancelled: web rolled back)"},
		{Request{Command: "pause", Rollout: "bad"}, "not_running", "bad has not started (invalid: bad.yaml:3:1: steps: missing)"},
	} {
		resp := send(t, path, tc.req)
		if resp.OK || resp.Code != tc.code || resp.Error != tc.want {
			t.Errorf("%+v: %+v, want %s: %s", tc.req, resp, tc.code, tc.want)
		}
	}
	if got := f.targets["web"].commands(); len(got) != 0 {
		t.Errorf("web got %+v, want nothing", got)
	}
}

func TestFleetStatus(t *testing.T) {
	f := newFakeFleet(t)
	path := startFleet(t, f)
	resp := send(t, path, Request{Command: "status"})
	b, _ := json.Marshal(resp.Rollouts)
	want := `[{"name":"api","phase":"pending","step":1,"weight":10},` +
		`{"name":"bad","phase":"invalid","step":0,"weight":-1,"error":"bad.yaml:3:1: steps: missing"},` +
		`{"name":"eu","phase":"waiting","step":0,"weight":-1,"waiting":["web"]},` +
		`{"name":"us","phase":"cancelled","step":0,"weight":-1,"reason":"web rolled back"},` +
		`{"name":"web","phase":"pending","step":1,"weight":-1}]`
	if !resp.OK || resp.Status != nil || string(b) != want {
		t.Errorf("status: ok %v status %v rollouts\n%s\nwant\n%s", resp.OK, resp.Status, b, want)
	}
	if resp := send(t, path, Request{Command: "status", Rollout: "web"}); !resp.OK || resp.Status == nil || resp.Status.Name != "web" || resp.Status.Journal != "web.jsonl" {
		t.Errorf("status web: %+v", resp)
	}
	if resp := send(t, path, Request{Command: "status", Rollout: "eu"}); !resp.OK || len(resp.Rollouts) != 1 || resp.Rollouts[0].Phase != PhaseWaiting {
		t.Errorf("status eu: %+v", resp)
	}
	// With one rollout, a verb needs no name and status is the rollout's own.
	one := &fakeFleet{statuses: f.statuses[4:], targets: map[string]*target{"web": f.targets["web"]}}
	path = startFleet(t, one)
	if resp := send(t, path, Request{Command: "status"}); !resp.OK || resp.Status == nil || resp.Status.Name != "web" {
		t.Errorf("status of the only one: %+v", resp)
	}
	if resp := send(t, path, Request{Command: "rollback"}); !resp.OK {
		t.Errorf("rollback of the only one: %+v", resp)
	}
	if got := one.targets["web"].commands(); len(got) != 1 || got[0].Kind != engine.CommandRollback {
		t.Errorf("web got %+v", got)
	}
}

func TestOneRolloutRefusesOtherNames(t *testing.T) {
	tgt := newTarget(t)
	path := filepath.Join(t.TempDir(), "s.sock")
	start(t, path, tgt, Options{})
	if resp := send(t, path, Request{Command: "pause", Rollout: "api"}); resp.OK || resp.Code != "not_found" || !strings.Contains(resp.Error, `runs rollout "web", not "api"`) {
		t.Errorf("pause api on web's socket: %+v", resp)
	}
	if resp := send(t, path, Request{Command: "pause", Rollout: "web"}); !resp.OK {
		t.Errorf("pause web: %+v", resp)
	}
	if got := tgt.commands(); len(got) != 1 {
		t.Errorf("commands %+v, want the one pause", got)
	}
}
