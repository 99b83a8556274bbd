// Command fleetbench measures what a fleet of rollouts in one process costs: it runs N real
// engines (default 200), each a builtin-style rollout (an in-memory router, and an in-memory
// source answering the proxy's measures) looked at every second with the default judge, each
// with its own journal, plus optionally the fleet overview served over SSH to V viewers. The
// fleet runs in a child process so that what is measured is the fleet alone: its CPU time over
// wall time, its resident memory and Go heap in use, per rollout; the bytes each viewer
// receives a second; and how long the overview's View() takes at 240×60 over the fleet's live
// states once the window is over.
//
//	go run ./cmd/fleetbench -n 200 -window 30s
//	go run ./cmd/fleetbench -n 200 -viewers 10
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/log"
	"github.com/muesli/termenv"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/enginetest"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/internal/benchssh"
	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/tui"
	"github.com/perchhq/perch/tui/remote"
)

func main() {
	n := flag.Int("n", 200, "rollouts in the fleet")
	viewers := flag.Int("viewers", 0, "SSH viewers of the overview (0: none, and no SSH server)")
	warmup := flag.Duration("warmup", 15*time.Second, "time after the fleet started (and every viewer connected) before measuring")
	window := flag.Duration("window", 30*time.Second, "how long to measure")
	judge := flag.String("judge", "sequential", "the rollouts' judge (sequential, mannwhitney, threshold)")
	step := flag.Duration("step", 10*time.Minute, "how long each of the four steps analyses")
	journal := flag.Bool("journal", true, "give each rollout a journal on disk (fsynced per event), as a fleet does")
	serve := flag.Bool("serve", false, "run the fleet (the child process; used by fleetbench itself)")
	keys := flag.String("keys", "", "operator keys for the SSH server (with -serve)")
	profile := flag.String("cpuprofile", "", "write the fleet's CPU profile (from its start to the window's end) to this file")
	flag.Parse()
	if *serve {
		if err := runFleet(*n, *step, *judge, *journal, *keys, *viewers > 0, *profile); err != nil {
			fail(err)
		}
		return
	}
	if err := measure(*n, *viewers, *step, *judge, *journal, *warmup, *window, *profile); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fleetbench:", err)
	os.Exit(1)
}

// measure starts the fleet as a child process and measures it.
func measure(n, viewers int, step time.Duration, judge string, journal bool, warmup, window time.Duration, profile string) error {
	dir, err := os.MkdirTemp("", "fleetbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	signer, line, err := benchssh.NewKey("bench")
	if err != nil {
		return err
	}
	keys := filepath.Join(dir, "ops")
	if err := os.WriteFile(keys, []byte(line), 0o600); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "-serve", "-n", strconv.Itoa(n), "-step", step.String(), "-judge", judge, "-journal="+strconv.FormatBool(journal), "-keys", keys, "-viewers", strconv.Itoa(viewers), "-cpuprofile", profile)
	cmd.Dir, cmd.Stderr = dir, os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var heap, live atomic.Int64 // the child's newest reports
	ready := make(chan string, 1)
	render := make(chan string, 1)
	states := make(chan string, 1)
	go func() {
		for l := range lines {
			switch f := strings.Fields(l); {
			case len(f) == 2 && f[0] == "ready":
				ready <- f[1]
			case len(f) == 2 && f[0] == "heap":
				v, _ := strconv.ParseInt(f[1], 10, 64)
				heap.Store(v)
			case len(f) == 2 && f[0] == "live":
				v, _ := strconv.ParseInt(f[1], 10, 64)
				live.Store(v)
			case len(f) > 0 && f[0] == "render":
				render <- strings.Join(f[1:], " ")
			case len(f) > 0 && f[0] == "states":
				states <- strings.Join(f[1:], " ")
			}
		}
		close(render)
		close(states)
	}()
	var addr string
	select {
	case addr = <-ready:
	case <-time.After(60 * time.Second):
		return errors.New("the fleet never became ready")
	}

	var received atomic.Int64
	var connected atomic.Int32
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range viewers {
		wg.Go(func() {
			if err := (benchssh.Viewer{Addr: addr, Signer: signer, Cols: 240, Rows: 60, Received: &received, Connected: &connected}).Watch(stop); err != nil {
				fmt.Fprintln(os.Stderr, "viewer:", err)
			}
		})
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(warmup)
	pid := cmd.Process.Pid
	cpu0, err := benchssh.CPUSeconds(pid)
	if err != nil {
		return err
	}
	bytes0, start := received.Load(), time.Now()
	time.Sleep(window)
	cpu1, _ := benchssh.CPUSeconds(pid)
	bytes1, elapsed := received.Load(), time.Since(start).Seconds()
	rss, err := benchssh.RSSMiB(pid)
	if err != nil {
		return err
	}
	heapMiB := float64(heap.Load()) / (1 << 20)
	close(stop)
	wg.Wait()
	stdin.Close() // the child times the overview's View(), reports and exits
	got := <-render

	cores := (cpu1 - cpu0) / elapsed
	fmt.Printf("rollouts %d, judge %s, journals %v, looks every 1s, steps of %s, %s measured after %s, %d CPUs\n",
		n, judge, journal, step, window, warmup, runtime.NumCPU())
	fmt.Printf("%-28s %12s %14s\n", "", "fleet", "per rollout")
	fmt.Printf("%-28s %11.1f%% %13.3f%%\n", "CPU (of one core)", cores*100, cores*100/float64(n))
	fmt.Printf("%-28s %8.1f MiB %10.1f KiB\n", "resident memory (VmRSS)", rss, rss*1024/float64(n))
	fmt.Printf("%-28s %8.1f MiB %10.1f KiB\n", "Go heap in use", heapMiB, heapMiB*1024/float64(n))
	liveMiB := float64(live.Load()) / (1 << 20)
	fmt.Printf("%-28s %8.1f MiB %10.1f KiB\n", "Go heap live (after a GC)", liveMiB, liveMiB*1024/float64(n))
	if viewers > 0 {
		c := int(connected.Load())
		fmt.Printf("%-28s %12d\n", "SSH viewers connected", c)
		if c > 0 {
			fmt.Printf("%-28s %12.0f\n", "bytes/viewer/s", float64(bytes1-bytes0)/elapsed/float64(c))
		}
	}
	fmt.Printf("%-28s %s\n", "overview View() 240×60", got)
	fmt.Printf("%-28s %s\n", "rollouts at the end", <-states)
	return nil
}

// rolloutFile is each rollout of the fleet: a proxy rollout judged from the builtin source's
// measures in four steps of STEP each. Each look asks for the step's whole analysis window so
// far, so a look costs more the longer its step has run: -warmup places the measurement.
const rolloutFile = `
name: NAME
canary: {version: v2.4.1}
traffic:
  proxy: {listen: "127.0.0.1:8080", stable: "http://127.0.0.1:9001", canary: "http://127.0.0.1:9002"}
metrics: {builtin: {}}
analysis: {interval: 1s, stabilization: 1s, judge: JUDGE}
checks:
  - {name: errors, builtin: error_rate, maxIncrease: 0.01, critical: true}
  - {name: p99, builtin: latency_p99, maxDeviationPercent: 20}
  - {name: p50, builtin: latency_p50, maxDeviationPercent: 20}
steps:
  - setWeight: 5
    analyze: STEP
  - setWeight: 10
    analyze: STEP
  - setWeight: 25
    analyze: STEP
  - setWeight: 50
    analyze: STEP
`

// runFleet runs the fleet until its stdin closes, reporting its heap every second; then it
// times the overview's View() and exits.
func runFleet(n int, step time.Duration, judge string, journal bool, keys string, ssh bool, profile string) error {
	if profile != "" {
		out, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer out.Close()
		if err := pprof.StartCPUProfile(out); err != nil {
			return err
		}
		defer pprof.StopCPUProfile() // a second stop, after the one at the window's end, does nothing
	}
	dir, err := os.MkdirTemp("", "fleetbench-journals")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &enginetest.Fleet{Engines: map[string]*engine.Engine{}, Poll: 250 * time.Millisecond}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := range n {
		name := fmt.Sprintf("service-%03d", i)
		file := strings.NewReplacer("NAME", name, "STEP", step.String(), "JUDGE", judge).Replace(rolloutFile)
		rollout, err := spec.Parse(name+".yaml", []byte(file))
		if err != nil {
			return err
		}
		cfg := engine.Config{Spec: rollout, Router: &enginetest.Router{}, Source: builtinSource{seed: uint64(i)}}
		if journal {
			j, err := engine.CreateJournal(filepath.Join(dir, name+".jsonl"), rollout, time.Now())
			if err != nil {
				return err
			}
			defer j.Close()
			cfg.Journal = j
		}
		eng, err := engine.New(cfg)
		if err != nil {
			return err
		}
		f.Engines[name] = eng
		wg.Go(func() { _, _ = eng.Run(ctx) })
	}
	addr := "-"
	if ssh {
		srv, err := remote.New(remote.Config{Addr: "127.0.0.1:0", HostKeyPath: filepath.Join(dir, "host"), Keys: mustKeys(keys), Fleet: f,
			Logger: log.New(io.Discard), Limits: remote.Limits{MaxSessions: 1000, MaxSessionsPerKey: 1000, MaxStartups: 1000},
			NewModel: func(s remote.Session) tea.Model {
				return tui.NewOverview(tui.OverviewOptions{Fleet: s.Fleet, Actor: s.Actor, Mode: tui.ModeRemote,
					Renderer: s.Renderer, Presence: s.Presence.ByRollout})
			}})
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		addr = ln.Addr().String()
		wg.Go(func() { _ = srv.Serve(ctx, ln) })
	}
	fmt.Println("ready", addr)
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(done) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case <-tick.C:
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			fmt.Println("heap", ms.HeapInuse)
		}
	}
	pprof.StopCPUProfile()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	fmt.Println("live", ms.HeapInuse)
	fmt.Println("render", timeView(f))
	fmt.Println("states", summary(f.Engines))
	return nil
}

// summary counts the rollouts by phase and averages their looks, to show they ran as meant.
func summary(engines map[string]*engine.Engine) string {
	phases := map[engine.Phase]int{}
	looks := 0
	why := ""
	for _, e := range engines {
		st := e.Snapshot()
		phases[st.Phase]++
		looks += st.Looks
		switch {
		case why != "":
		case st.Phase == engine.PhaseRolledBack:
			why = fmt.Sprintf(" (one rolled back at look %d of step %d: %s)", st.Looks, st.Step+1, st.EndReason)
		case st.Phase == engine.PhaseHolding:
			why = fmt.Sprintf(" (one holding at look %d of step %d: %s: %s)", st.Looks, st.Step+1, st.Hold, st.HoldReason)
		}
	}
	var parts []string
	for ph, c := range phases {
		parts = append(parts, fmt.Sprintf("%d %s", c, ph))
	}
	slices.Sort(parts)
	return fmt.Sprintf("%s%s; %.0f looks per rollout in its step", strings.Join(parts, ", "), why, float64(looks)/float64(max(len(engines), 1)))
}

func mustKeys(path string) *remote.Keyring {
	k, err := remote.LoadKeyring(path, "")
	if err != nil {
		fail(err)
	}
	return k
}

// timeView draws the overview of the fleet's newest states at 240×60, afresh each time, and
// reports the median and slowest of 200 draws.
func timeView(f tui.Fleet) string {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.TrueColor) // as a colour terminal gets it: every cell styled
	o := tui.NewOverview(tui.OverviewOptions{Fleet: f, Renderer: r, Presence: func() map[string][]engine.Actor { return nil }})
	drive(o, o.Init(), 4)
	var took []time.Duration
	for range 200 {
		o.Update(tea.WindowSizeMsg{Width: 240, Height: 60}) // the next View draws afresh
		start := time.Now()
		view := o.View()
		took = append(took, time.Since(start))
		if !strings.Contains(view, "service-") {
			return "the overview shows no rollout"
		}
	}
	slices.Sort(took)
	return fmt.Sprintf("median %s, slowest %s (%d draws)", took[len(took)/2].Round(time.Microsecond), took[len(took)-1].Round(time.Microsecond), len(took))
}

// drive runs cmd and feeds what it produces to o, depth commands deep; a command that takes
// longer than a moment (a clock tick) is left.
func drive(o tea.Model, cmd tea.Cmd, depth int) {
	if cmd == nil || depth == 0 {
		return
	}
	got := make(chan tea.Msg, 1)
	go func() { got <- cmd() }()
	select {
	case msg := <-got:
		if batch, ok := msg.(tea.BatchMsg); ok {
			for _, c := range batch {
				drive(o, c, depth-1)
			}
			return
		}
		if msg != nil {
			_, next := o.Update(msg)
			drive(o, next, depth-1)
		}
	case <-time.After(200 * time.Millisecond):
	}
}

// builtinSource answers the builtin source's queries (the proxy's measures per version) with
// a healthy canary: 1% errors on both sides, latencies a little noisy around the same values,
// one sample per step of the window, as the proxy's source returns them.
type builtinSource struct{ seed uint64 }

func (s builtinSource) Samples(_ context.Context, q metrics.Query, start, end time.Time, step time.Duration) ([]metrics.Sample, error) {
	measure, version, err := metrics.ParseBuiltinQuery(q)
	if err != nil {
		return nil, err
	}
	side := uint64(1)
	if version == metrics.VersionCanary {
		side = 2
	}
	m := uint64(len(measure))<<8 | uint64(measure[len(measure)-1])
	var out []metrics.Sample
	for t := start; !t.After(end); t = t.Add(step) {
		// Roughly normal, from -1 to 1: the mean of four uniform draws.
		noise := 0.0
		for k := range uint64(4) {
			noise += float64(mix(s.seed^k<<40, side<<16|m, uint64(t.Unix()))%2001)/1000 - 1
		}
		noise /= 4
		v := 0.0
		switch measure {
		case metrics.MeasureRequests:
			v = 100
		case metrics.MeasureErrors:
			v = 1
		case metrics.MeasureThroughput:
			v = 100
		case metrics.MeasureLatencyP50:
			v = 0.050 * (1 + 0.1*noise)
		default: // p95, p99
			v = 0.200 * (1 + 0.1*noise)
		}
		out = append(out, metrics.Sample{Time: t, Value: v})
	}
	return out, nil
}

// mix is a cheap hash of its inputs (splitmix64's finaliser).
func mix(a, b, c uint64) uint64 {
	x := a*0x9e3779b97f4a7c15 ^ b*0xbf58476d1ce4e5b9 ^ c*0x94d049bb133111eb
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
