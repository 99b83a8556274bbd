package hooks_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/perchhq/perch/engine/hooks"
	"github.com/perchhq/perch/engine/spec"
)

var vars = spec.HookVars{Rollout: "checkout", Step: 2, Weight: 10, Canary: "v2.4.0"}

func execHook(timeout time.Duration, command ...string) spec.Hook {
	return spec.Hook{On: spec.HookBeforeStep, Exec: &spec.ExecHook{Command: command, Timeout: spec.Duration(timeout)}}
}

// script writes a shell script to run as a hook (the hook itself runs no shell: the script's
// own #! line does).
func script(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hook.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// alive reports whether pid is a process that has not exited (a zombie has).
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

func TestExecPassesAndTemplates(t *testing.T) {
	path := script(t, `echo "arg=$1 env=$PERCH_ROLLOUT/$PERCH_STEP/$PERCH_WEIGHT/$PERCH_CANARY"; echo oops >&2`)
	res := hooks.Runner{}.Run(context.Background(), execHook(10*time.Second, path, "{{.Weight}}"), vars)
	if res.Outcome != hooks.OK || res.ExitCode == nil || *res.ExitCode != 0 {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(res.Output, "arg=10 env=checkout/2/10/v2.4.0") || !strings.Contains(res.Output, "oops") {
		t.Errorf("output %q: want the templated argument, the environment and stderr", res.Output)
	}
}

// TestExecNoShell: an argument is passed as it is, never interpreted by a shell.
func TestExecNoShell(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "pwned")
	res := hooks.Runner{}.Run(context.Background(), execHook(10*time.Second, "/bin/echo", "$(touch "+marker+")", ";", "touch", marker), vars)
	if res.Outcome != hooks.OK {
		t.Fatalf("result %+v", res)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("an argument ran as a shell command")
	}
	if !strings.Contains(res.Output, "$(touch") {
		t.Errorf("output %q", res.Output)
	}
}

func TestExecNonZeroExit(t *testing.T) {
	path := script(t, "echo smoke test failed: 3 of 40 requests; exit 3\n")
	res := hooks.Runner{}.Run(context.Background(), execHook(10*time.Second, path), vars)
	if res.Outcome != hooks.Failed || res.ExitCode == nil || *res.ExitCode != 3 || res.Error != "exit status 3" {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(res.Output, "3 of 40") {
		t.Errorf("output %q", res.Output)
	}
}

func TestExecMissingProgram(t *testing.T) {
	res := hooks.Runner{}.Run(context.Background(), execHook(10*time.Second, "/no/such/program"), vars)
	if res.Outcome != hooks.Failed || !strings.Contains(res.Error, "no such file") {
		t.Fatalf("result %+v", res)
	}
}

// TestExecOutputBounded: only the last MaxOutput bytes of a chatty command are kept.
func TestExecOutputBounded(t *testing.T) {
	path := script(t, "i=0; while [ $i -lt 5000 ]; do echo line $i of a chatty smoke test; i=$((i+1)); done; echo THE END\n")
	res := hooks.Runner{}.Run(context.Background(), execHook(30*time.Second, path), vars)
	if res.Outcome != hooks.OK {
		t.Fatalf("result %+v", res)
	}
	if len(res.Output) > hooks.MaxOutput || !strings.HasSuffix(res.Output, "THE END\n") || strings.Contains(res.Output, "line 0 ") {
		t.Errorf("output of %d bytes ending %q: want the last %d bytes", len(res.Output), res.Output[max(len(res.Output)-40, 0):], hooks.MaxOutput)
	}
}

// TestExecTimeoutKillsGroup: a command that runs past its timeout is stopped with everything
// it started, even a child that ignores SIGTERM.
func TestExecTimeoutKillsGroup(t *testing.T) {
	pids := filepath.Join(t.TempDir(), "pids")
	path := script(t, `trap '' TERM
sleep 300 &
echo $! > `+pids+`
sh -c 'trap "" TERM; sleep 300' &
echo $! >> `+pids+`
echo started
sleep 300
`)
	start := time.Now()
	res := hooks.Runner{KillGrace: 300 * time.Millisecond}.Run(context.Background(), execHook(time.Second, path), vars)
	if res.Outcome != hooks.TimedOut || !strings.Contains(res.Error, "timeout of 1s") {
		t.Fatalf("result %+v", res)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %s to stop", took)
	}
	if !strings.Contains(res.Output, "started") {
		t.Errorf("output %q", res.Output)
	}
	data, err := os.ReadFile(pids)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(data)) {
		pid, _ := strconv.Atoi(f)
		deadline := time.Now().Add(5 * time.Second)
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("child %d outlived its hook's timeout", pid)
		}
	}
}

// TestExecCanceled: a hook the rollout no longer needs is stopped and says so.
func TestExecCanceled(t *testing.T) {
	path := script(t, "sleep 300\n")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	res := hooks.Runner{KillGrace: 300 * time.Millisecond}.Run(ctx, execHook(time.Minute, path), vars)
	if res.Outcome != hooks.Canceled {
		t.Fatalf("result %+v", res)
	}
}

// TestExecLeavesNothingBehind: what a passing command started in the background (holding its
// output open) is killed once it exits, and the hook does not wait on it past the grace.
func TestExecLeavesNothingBehind(t *testing.T) {
	pids := filepath.Join(t.TempDir(), "pids")
	path := script(t, "sleep 300 &\necho $! > "+pids+"\necho done\n")
	start := time.Now()
	res := hooks.Runner{KillGrace: 300 * time.Millisecond}.Run(context.Background(), execHook(time.Minute, path), vars)
	if res.Outcome != hooks.OK || !strings.Contains(res.Output, "done") {
		t.Fatalf("result %+v", res)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %s", took)
	}
	data, err := os.ReadFile(pids)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("background child %d outlived its hook", pid)
	}
}
