package hooks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/perchhq/perch/engine/spec"
)

// exec runs an exec hook's command in a process group of its own, so that a timeout stops
// everything it started, not only the program perch started.
func (r Runner) exec(ctx context.Context, h spec.Hook, v spec.HookVars) Result {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(h.Exec.Timeout))
	defer cancel()
	argv := make([]string, len(h.Exec.Command))
	for i, arg := range h.Exec.Command {
		s, err := v.Expand(arg, false)
		if err != nil {
			return Result{Outcome: Failed, Error: fmt.Sprintf("command[%d]: %v", i, err)}
		}
		argv[i] = s
	}
	out := &tail{max: MaxOutput}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), v.Env()...)
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	grace := r.KillGrace
	if grace <= 0 {
		grace = DefaultKillGrace
	}
	// Wait returns this long after the program exits even if something it started (in the
	// group, or escaped from it) still holds the output open.
	cmd.WaitDelay = grace
	if err := cmd.Start(); err != nil {
		return Result{Outcome: Failed, Error: err.Error()}
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	stopped := false
	select {
	case err = <-done:
	case <-ctx.Done():
		stopped = true
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		t := time.NewTimer(grace)
		select {
		case err = <-done:
		case <-t.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			err = <-done
		}
		t.Stop()
	}
	// Nothing the hook started outlives it.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	res := Result{Output: out.String()}
	code := cmd.ProcessState.ExitCode()
	res.ExitCode = &code
	switch {
	case stopped:
		res.Outcome = ended(ctx)
		if res.Outcome == TimedOut {
			res.Error = fmt.Sprintf("still running after its timeout of %s: stopped", h.Exec.Timeout)
		} else {
			res.Error = "stopped: the rollout no longer needs it"
		}
	case err == nil || errors.Is(err, exec.ErrWaitDelay) && code == 0:
		res.Outcome = OK
	default:
		res.Outcome = Failed
		res.Error = err.Error()
	}
	return res
}
