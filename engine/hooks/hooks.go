package hooks

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/perchhq/perch/engine/spec"
)

// Outcome is how a hook ended.
type Outcome string

// The outcomes.
const (
	OK       Outcome = "ok"
	Failed   Outcome = "failed"   // a non-zero exit, a non-2xx answer, an error, failed load-test requests
	TimedOut Outcome = "timeout"  // it ran past its timeout and was stopped
	Canceled Outcome = "canceled" // the rollout no longer needed it (a rollback, a promotion, a stop)
)

// Limits of what a hook keeps and how it is stopped.
const (
	MaxOutput        = 4 << 10 // bytes of output or answer kept
	DefaultKillGrace = 2 * time.Second
	maxRedirects     = 3
)

// Result is how one run of a hook went.
type Result struct {
	Outcome Outcome
	// Error says why it did not pass, in words ("exit status 3", "HTTP 500"); empty when OK.
	Error    string
	ExitCode *int // an exec hook that exited (-1: killed by a signal)
	Status   int  // a webhook's HTTP status, 0 without an answer
	// Output is the command's last MaxOutput bytes of output, or the answer's first.
	Output   string
	Duration time.Duration
	// A load test's requests sent, failed (an error or a status of 400 or more), and skipped
	// because every worker was still waiting on an earlier one.
	Requests, Failures, Skipped int64
}

// Runner runs hooks. The zero Runner reads the real environment and waits DefaultKillGrace
// between SIGTERM and SIGKILL.
type Runner struct {
	Getenv    func(string) string // nil: os.Getenv
	KillGrace time.Duration       // 0: DefaultKillGrace
}

// Run runs hook h with its templates filled from v, bounded by its timeout and by ctx; a load
// test runs until ctx ends. A hook cut short by ctx (not its timeout) is Canceled.
func (r Runner) Run(ctx context.Context, h spec.Hook, v spec.HookVars) Result {
	start := time.Now()
	var res Result
	switch {
	case h.Exec != nil:
		res = r.exec(ctx, h, v)
	case h.Webhook != nil:
		res = r.webhook(ctx, h, v)
	case h.LoadTest != nil:
		res = r.load(ctx, h, v)
	default:
		res = Result{Outcome: Failed, Error: "the hook has no webhook, exec or loadTest"}
	}
	res.Duration = time.Since(start)
	res.Output = strings.ToValidUTF8(res.Output, "\uFFFD")
	return res
}

func (r Runner) getenv(name string) string {
	if r.Getenv != nil {
		return r.Getenv(name)
	}
	return os.Getenv(name)
}

// ended classifies a run cut short: past its own deadline it timed out; otherwise whoever ran
// it cancelled it.
func ended(ctx context.Context) Outcome {
	if errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		return TimedOut
	}
	return Canceled
}

// tail keeps the last max bytes written to it; it is safe for the two writers a command's
// stdout and stderr are.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) >= t.max {
		p = p[len(p)-t.max:]
		t.buf = append(t.buf[:0], p...)
		return n, nil
	}
	if over := len(t.buf) + len(p) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
