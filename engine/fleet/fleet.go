package fleet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
)

// DefaultPoll is how often a watched directory is scanned for new, changed and removed files.
const DefaultPoll = 2 * time.Second

// maxFiles bounds the rollout files a directory may hold: each is read and parsed on every
// change, and each running one holds an engine and a journal.
const maxFiles = 1000

// maxFileSize bounds a rollout file: a file that size is not a rollout someone wrote.
const maxFileSize = 1 << 20

// Start is one rollout the fleet asks its RunFunc to run.
type Start struct {
	// File is the rollout file's path; Spec is what it held when the fleet read it, already
	// validated.
	File string
	Spec *spec.Rollout
	// Started hands the fleet the rollout's engine and the path of its journal once both
	// exist, before the engine runs, so the fleet publishes its states and serves it by name.
	// A RunFunc that fails before calling it has failed to start: nothing was journaled.
	Started func(eng *engine.Engine, journal string)
	// Serve is Started for a view that may not be a local engine: with replicas sharing the
	// fleet, the follower of a rollout another replica leads, or this replica's leading
	// engine. Each call replaces the view before it; the fleet shows its states and serves
	// it by name, and reads its role and leader if it has them (Replicated).
	Serve func(v View, journal string)
}

// View is a started rollout as the fleet shows and serves it: its engine, or with replicas a
// follower of the leader's journal.
type View interface {
	Rollout
	Snapshot() engine.State
}

// Replicated is a View that one of several replicas serves: its role here and the leader's id.
type Replicated interface {
	Replica() (role, leader string)
}

// RunFunc runs one rollout to its end, as it would run alone: it connects its provider and
// source, opens its journal, builds the engine, calls Start.Started, runs the engine with
// whatever surrounds it (alerts, notifications, the printer) and returns how it ended. It
// must return once ctx ends.
type RunFunc func(ctx context.Context, s Start) (engine.Outcome, error)

// Config says where a fleet's rollouts come from and how each one runs.
type Config struct {
	// Dir, if set, is scanned every Poll for rollout files (*.yaml, *.yml); the fleet runs
	// until its context ends.
	Dir string
	// Files are rollout files read once; with no Dir the fleet ends once every rollout has.
	Files []string
	// Poll is how often Dir is scanned; DefaultPoll if zero.
	Poll time.Duration
	// Run runs one rollout. Required.
	Run RunFunc
	// Load reads and validates a rollout file; spec.Load if nil.
	Load func(path string) (*spec.Rollout, error)
	// Logf reports what happens to the files and the waves; nil discards the reports.
	Logf func(format string, args ...any)
}

// Fleet runs many rollouts in one process, each with its own engine and journal, starting
// each once the rollouts it depends on have promoted. It is safe for concurrent use.
type Fleet struct {
	cfg Config

	mu      sync.Mutex
	entries []*entry // by file, in the order they were found
	subs    map[chan []Status]struct{}
	closed  bool
	running sync.WaitGroup
	// changed wakes Run when an entry ended, so a fleet of files knows when it is done.
	changed chan struct{}
	// last is what the previous scan of Dir found (nil before the first): a file is read
	// only once it is as it was one scan ago, so a file being written is not read half-way.
	last map[string]stamp
	// logs are reports made while f.mu was held, given to Config.Logf once it is released,
	// so Logf may call the fleet.
	logs []string
	// dirNote is the last problem reported about Dir, so it is not repeated every scan.
	dirNote string
	ctx     context.Context // Run's, for the rollouts it starts
}

// entry is one rollout file and what became of it.
type entry struct {
	status Status
	spec   *spec.Rollout // nil when the file was refused before it could be read
	stamp  stamp         // the file as last read
	view   View
	// gen counts the views e had, so only the newest one's states are shown.
	gen int
	// retry says the file was refused only for naming a rollout not (yet) in the fleet: it is
	// checked again on every scan, since that rollout's file may be on its way.
	retry bool
	// started: the RunFunc was called; ended: it has returned.
	started, ended bool
	// noted says a change or the removal of the file was reported already.
	notedChange stamp
	notedGone   bool
}

func (e *entry) valid() bool { return e.status.Invalid == "" }

// waiting says the rollout has not started and may still.
func (e *entry) waiting() bool { return e.valid() && !e.started && e.status.Cancelled == "" }

// stamp tells whether a file changed since it was read.
type stamp struct {
	mod  time.Time
	size int64
}

// New checks cfg and returns a fleet that has started nothing yet: Run starts it.
func New(cfg Config) (*Fleet, error) {
	if cfg.Run == nil {
		return nil, errors.New("fleet: Config.Run is required")
	}
	if cfg.Dir == "" && len(cfg.Files) == 0 {
		return nil, errors.New("fleet: no rollouts: give a directory or files")
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Load == nil {
		cfg.Load = spec.Load
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	return &Fleet{cfg: cfg, subs: map[chan []Status]struct{}{}, changed: make(chan struct{}, 1)}, nil
}

// Run reads the rollouts and runs them: with a Dir until ctx ends, rescanning it; with Files
// only, until every rollout has ended or can no longer start. Either way it returns once every
// rollout it started has returned, then closes every subscription. A rollout that never
// started journals nothing.
func (f *Fleet) Run(ctx context.Context) error {
	f.mu.Lock()
	f.ctx = ctx
	f.unlock()
	defer f.close()
	if f.cfg.Dir != "" {
		if fi, err := os.Stat(f.cfg.Dir); err != nil {
			return fmt.Errorf("--rollouts: %w", err)
		} else if !fi.IsDir() {
			return fmt.Errorf("--rollouts %s: not a directory", f.cfg.Dir)
		}
	}
	f.scan()
	if f.cfg.Dir == "" && f.done() {
		f.running.Wait()
		return nil
	}
	var tick <-chan time.Time
	if f.cfg.Dir != "" {
		t := time.NewTicker(f.cfg.Poll)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			f.stopping()
			f.running.Wait()
			return nil
		case <-tick:
			f.scan()
		case <-f.changed:
			if f.cfg.Dir == "" && f.done() {
				f.running.Wait()
				return nil
			}
		}
	}
}

// done says no rollout runs or may still start.
func (f *Fleet) done() bool {
	f.mu.Lock()
	defer f.unlock()
	for _, e := range f.entries {
		if e.waiting() || (e.started && !e.ended) {
			return false
		}
	}
	return true
}

// stopping reports the rollouts that will now never start.
func (f *Fleet) stopping() {
	f.mu.Lock()
	defer f.unlock()
	for _, e := range f.entries {
		if e.waiting() {
			f.logLocked("%s: never started (perch stopped while it waited for %s); nothing was journaled", e.status.Name, strings.Join(e.status.Waiting, ", "))
		}
	}
}

func (f *Fleet) close() {
	f.mu.Lock()
	defer f.unlock()
	f.closed = true
	for ch := range f.subs {
		close(ch)
	}
	f.subs = nil
}

// Subscribe returns a channel that always holds the newest list of every rollout's status (a
// slow reader skips to the newest), sent whenever a rollout is added or any rollout's state
// changes, and a function to unsubscribe. The channel holds the current list at once, and is
// closed once the fleet has ended.
func (f *Fleet) Subscribe() (<-chan []Status, func()) {
	ch := make(chan []Status, 1)
	f.mu.Lock()
	defer f.unlock()
	if f.closed {
		close(ch)
		return ch, func() {}
	}
	ch <- f.statusesLocked()
	f.subs[ch] = struct{}{}
	return ch, func() {
		f.mu.Lock()
		defer f.unlock()
		if _, ok := f.subs[ch]; ok {
			delete(f.subs, ch)
			close(ch)
		}
	}
}

// Rollout is the named rollout's engine, for a dashboard or a command, once the rollout has
// started (also after it ended: it then refuses commands with engine.ErrNotRunning). False
// for a name the fleet does not run (unknown, waiting, cancelled or invalid).
func (f *Fleet) Rollout(name string) (Rollout, bool) {
	f.mu.Lock()
	defer f.unlock()
	for _, e := range f.entries {
		if e.valid() && e.status.Name == name && e.view != nil {
			return e.view, true
		}
	}
	return nil, false
}

// Statuses is every rollout's status now, sorted by name (then file).
func (f *Fleet) Statuses() []Status {
	f.mu.Lock()
	defer f.unlock()
	return f.statusesLocked()
}

func (f *Fleet) statusesLocked() []Status {
	out := make([]Status, 0, len(f.entries))
	for _, e := range f.entries {
		s := e.status
		s.Waiting = slices.Clone(s.Waiting)
		s.DependsOn = slices.Clone(s.DependsOn)
		if r, ok := e.view.(Replicated); ok {
			s.Role, s.Leader = r.Replica()
		}
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].File < out[j].File
	})
	return out
}

// publishLocked sends the statuses to every subscriber, replacing a list not yet read.
func (f *Fleet) publishLocked() {
	if len(f.subs) == 0 {
		return
	}
	list := f.statusesLocked()
	for ch := range f.subs {
		select {
		case <-ch:
		default:
		}
		ch <- list // only publishLocked sends, under f.mu: the drained channel has room
	}
}

// logLocked reports, once f.mu is released (unlock).
func (f *Fleet) logLocked(format string, args ...any) {
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
}

// unlock releases f.mu, then reports what was logged under it.
func (f *Fleet) unlock() {
	logs := f.logs
	f.logs = nil
	f.mu.Unlock()
	for _, l := range logs {
		f.cfg.Logf("%s", l)
	}
}

// wake tells Run something ended.
func (f *Fleet) wake() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// files are the rollout files to read now, with their stamps: Files, then Dir's *.yaml and
// *.yml, sorted. A file that cannot be stat'ed is left out (it is gone).
func (f *Fleet) files() map[string]stamp {
	paths := slices.Clone(f.cfg.Files)
	if f.cfg.Dir != "" {
		entries, err := os.ReadDir(f.cfg.Dir)
		note := ""
		if err != nil {
			note = fmt.Sprintf("--rollouts %s: %v", f.cfg.Dir, err)
		}
		n := 0
		for _, de := range entries {
			ext := filepath.Ext(de.Name())
			if (ext != ".yaml" && ext != ".yml") || strings.HasPrefix(de.Name(), ".") {
				continue
			}
			if n++; n > maxFiles {
				note = fmt.Sprintf("--rollouts %s: more than %d rollout files; the rest are ignored", f.cfg.Dir, maxFiles)
				break
			}
			paths = append(paths, filepath.Join(f.cfg.Dir, de.Name()))
		}
		if note != f.dirNote && note != "" {
			f.cfg.Logf("%s", note) // files runs on Run's goroutine, without the lock
		}
		f.dirNote = note
	}
	out := map[string]stamp{}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			if f.cfg.Dir == "" {
				out[p] = stamp{} // a file given by name that cannot be read is refused, not skipped
			}
			continue
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		out[p] = stamp{mod: fi.ModTime(), size: fi.Size()}
	}
	return out
}

// scan reads new and changed files, admits what it can, notes removals and starts what is due.
func (f *Fleet) scan() {
	files := f.files()
	// Files are read without the lock: a slow disk must not stall the readers of Statuses.
	type read struct {
		path  string
		stamp stamp
		spec  *spec.Rollout
		err   error
	}
	f.mu.Lock()
	known := map[string]*entry{}
	for _, e := range f.entries {
		known[e.status.File] = e
	}
	var toRead []read
	last := f.last
	if f.cfg.Dir != "" {
		f.last = files
	}
	for p, st := range files {
		e := known[p]
		if last != nil && last[p] != st && (e == nil || !e.valid()) {
			continue // new or changed since the last scan: perhaps still being written
		}
		switch {
		case e == nil, !e.valid() && e.stamp != st:
			toRead = append(toRead, read{path: p, stamp: st})
		case e.valid() && e.stamp != st && e.notedChange != st:
			e.notedChange = st
			f.logLocked("%s: %s changed; a rollout's file is read once, so it carries on as it was read (a change takes a new rollout name, in a new file)", e.status.Name, p)
		}
	}
	f.unlock()
	sort.Slice(toRead, func(i, j int) bool { return toRead[i].path < toRead[j].path })
	for i := range toRead {
		if size := toRead[i].stamp.size; size > maxFileSize {
			toRead[i].err = fmt.Errorf("%s: %d bytes; a rollout file may have at most %d", toRead[i].path, size, maxFileSize)
			continue
		}
		toRead[i].spec, toRead[i].err = f.cfg.Load(toRead[i].path)
	}

	f.mu.Lock()
	defer f.unlock()
	changed := false
	for _, r := range toRead {
		e := known[r.path]
		if e == nil {
			e = &entry{}
			f.entries = append(f.entries, e)
			known[r.path] = e
		}
		e.stamp, e.spec, e.retry = r.stamp, r.spec, false
		e.status = Status{File: r.path, Name: nameOf(r.path)}
		if r.err != nil {
			e.status.Invalid = oneLine(r.err.Error())
			f.logLocked("%s: refused: %s", r.path, e.status.Invalid)
		} else {
			e.status.Name = r.spec.Name
			e.status.DependsOn = slices.Clone(r.spec.DependsOn)
			e.retry = true // admitted below
		}
		changed = true
	}
	// Files gone: a rollout carries on; a refused file is forgotten.
	kept := f.entries[:0]
	for _, e := range f.entries {
		if _, ok := files[e.status.File]; ok {
			kept = append(kept, e)
			continue
		}
		if !e.valid() || e.retry {
			changed = true
			continue
		}
		if !e.notedGone {
			e.notedGone = true
			f.logLocked("%s: %s was removed; the rollout carries on to its end", e.status.Name, e.status.File)
		}
		kept = append(kept, e)
	}
	clear(f.entries[len(kept):])
	f.entries = kept
	if f.admitLocked() {
		changed = true
	}
	if f.advanceLocked() {
		changed = true
	}
	if changed {
		f.publishLocked()
	}
}

// admitLocked decides the files read but not admitted yet (retry): a duplicate name is
// refused; a file whose dependsOn names only admitted rollouts is admitted; one that names a
// rollout in no file, or that closes a cycle, is refused, and looked at again next scan.
func (f *Fleet) admitLocked() bool {
	byName := map[string]*entry{} // admitted rollouts, and refused files by the name they gave
	var pending []*entry
	for _, e := range f.entries {
		switch {
		case e.retry:
			pending = append(pending, e)
		case e.valid():
			byName[e.status.Name] = e
		}
	}
	for _, e := range f.entries {
		if !e.valid() && !e.retry && byName[e.status.Name] == nil {
			byName[e.status.Name] = e
		}
	}
	if len(pending) == 0 {
		return false
	}
	sort.SliceStable(pending, func(i, j int) bool { return pending[i].status.File < pending[j].status.File })
	candidates := map[string]*entry{}
	for _, e := range pending {
		name := e.status.Name
		if other := byName[name]; other != nil && other.valid() {
			f.refuseLocked(e, fmt.Sprintf("%s: the name %q is taken by %s", e.spec.Where("name"), name, other.status.File), false)
			continue
		}
		if other := candidates[name]; other != nil {
			f.refuseLocked(e, fmt.Sprintf("%s: the name %q is taken by %s", e.spec.Where("name"), name, other.status.File), false)
			continue
		}
		candidates[name] = e
	}
	// Admit in rounds: a file is admitted once every rollout it names is.
	for progress := true; progress; {
		progress = false
		for _, e := range pending {
			if !e.retry || candidates[e.status.Name] != e {
				continue
			}
			ready := true
			for _, d := range e.spec.DependsOn {
				if dep := byName[d]; dep == nil || dep.retry {
					ready = false
				}
			}
			if ready {
				e.retry, e.status.Invalid = false, ""
				byName[e.status.Name] = e
				progress = true
				f.logLocked("%s: read %s", e.status.Name, e.status.File)
			}
		}
	}
	// What is left names an unknown rollout, or one in a cycle, or waits on one that does.
	for _, e := range pending {
		if !e.retry || candidates[e.status.Name] != e {
			continue
		}
		why := fmt.Sprintf("%s: dependsOn names a rollout that was refused", e.spec.Where("dependsOn"))
		if cycle := cycleFrom(e, candidates); cycle != nil {
			why = fmt.Sprintf("%s: dependsOn cycle: %s", e.spec.Where("dependsOn"), strings.Join(cycle, " → "))
		} else {
			for i, d := range e.spec.DependsOn {
				if byName[d] == nil && candidates[d] == nil {
					why = fmt.Sprintf("%s: dependsOn[%d]: no rollout is named %q", e.spec.Where(fmt.Sprintf("dependsOn[%d]", i)), i, d)
					break
				}
			}
		}
		f.refuseLocked(e, why, f.cfg.Dir != "")
	}
	return true
}

// refuseLocked marks e's file refused; retry keeps it for the next scan (its dependencies may
// yet appear).
func (f *Fleet) refuseLocked(e *entry, why string, retry bool) {
	was := e.status.Invalid
	e.status.Invalid, e.retry = why, retry
	if was != why {
		f.logLocked("%s: refused: %s", e.status.File, why)
	}
}

// cycleFrom is the chain of names from e back to e through candidates' dependsOn, or nil.
func cycleFrom(e *entry, candidates map[string]*entry) []string {
	var path []string
	seen := map[string]bool{}
	var walk func(x *entry) bool
	walk = func(x *entry) bool {
		path = append(path, x.status.Name)
		if seen[x.status.Name] {
			return x == e
		}
		seen[x.status.Name] = true
		for _, d := range x.spec.DependsOn {
			if next := candidates[d]; next != nil && next.retry && walk(next) {
				return true
			}
		}
		path = path[:len(path)-1]
		return false
	}
	if walk(e) {
		return path
	}
	return nil
}

// advanceLocked starts every waiting rollout whose dependencies have all promoted and cancels
// every one a dependency can no longer promote for; it says whether anything changed.
func (f *Fleet) advanceLocked() bool {
	byName := map[string]*entry{}
	for _, e := range f.entries {
		if e.valid() || byName[e.status.Name] == nil {
			byName[e.status.Name] = e
		}
	}
	if f.ctx == nil || f.ctx.Err() != nil {
		return false // stopping: what waits stays waiting, and is reported as never started
	}
	changed := false
	for progress := true; progress; {
		progress = false
		for _, e := range f.entries {
			if !e.waiting() || e.retry {
				continue
			}
			var waiting []string
			cancel := ""
			for _, d := range e.spec.DependsOn {
				dep := byName[d]
				if why := blocked(dep); why != "" {
					cancel = d + " " + why
					break
				}
				if dep.status.State.Phase != engine.PhasePromoted {
					waiting = append(waiting, d)
				}
			}
			switch {
			case cancel != "":
				e.status.Cancelled, e.status.Waiting = cancel, nil
				f.logLocked("%s: cancelled: %s; it never started and nothing was journaled", e.status.Name, cancel)
				progress, changed = true, true
			case len(waiting) == 0:
				e.status.Waiting = nil
				f.startLocked(e)
				progress, changed = true, true
			case !slices.Equal(waiting, e.status.Waiting):
				if len(e.status.Waiting) == 0 && len(waiting) > 0 {
					f.logLocked("%s: waiting for %s to promote", e.status.Name, strings.Join(waiting, ", "))
				}
				e.status.Waiting = waiting
				changed = true
			}
		}
	}
	return changed
}

// blocked says why dep will never promote for a rollout waiting on it, or "" if it still may.
func blocked(dep *entry) string {
	switch {
	case dep == nil:
		return "is not in the fleet"
	case !dep.valid():
		return "is invalid: " + dep.status.Invalid
	case dep.status.Cancelled != "":
		return "was cancelled"
	case dep.status.Failed != "":
		return "failed: " + dep.status.Failed
	case dep.status.State.Phase == engine.PhaseRollingBack, dep.status.State.Phase == engine.PhaseRolledBack:
		return "rolled back"
	case dep.ended && dep.status.State.Phase != engine.PhasePromoted:
		return "ended without promoting (" + dep.status.Outcome.Words() + ")"
	}
	return ""
}

// startLocked runs e on its own goroutine.
func (f *Fleet) startLocked(e *entry) {
	e.started = true
	f.running.Add(1)
	ctx := f.ctx
	start := Start{File: e.status.File, Spec: e.spec,
		Started: func(eng *engine.Engine, journal string) { f.viewStarted(e, eng, journal) },
		Serve:   func(v View, journal string) { f.viewStarted(e, v, journal) }}
	go func() {
		defer f.running.Done()
		out, err := f.cfg.Run(ctx, start)
		f.runEnded(e, out, err)
	}()
}

// viewStarted follows e's view (its engine, or a follower): each state it publishes becomes
// e's status, until another view replaces it.
func (f *Fleet) viewStarted(e *entry, v View, journal string) {
	states, _ := v.Subscribe() // closed when the engine shuts down or the follower closes
	f.mu.Lock()
	e.gen++
	gen := e.gen
	e.view, e.status.Journal, e.status.State = v, journal, v.Snapshot()
	f.advanceLocked()
	f.publishLocked()
	f.unlock()
	f.running.Add(1)
	go func() {
		defer f.running.Done()
		for st := range states {
			f.mu.Lock()
			if e.gen != gen {
				f.unlock()
				continue // replaced: drain until the old view closes
			}
			phase := e.status.State.Phase
			e.status.State = st
			if st.Phase != phase {
				f.advanceLocked()
			}
			f.publishLocked()
			f.unlock()
		}
	}()
}

// runEnded records how e's run ended and moves the waves on.
func (f *Fleet) runEnded(e *entry, out engine.Outcome, err error) {
	f.mu.Lock()
	defer f.unlock()
	e.ended, e.status.Outcome = true, out
	if e.view != nil {
		e.status.State = e.view.Snapshot()
	}
	if err != nil {
		e.status.Failed = oneLine(err.Error())
		if e.view == nil {
			f.logLocked("%s: could not start: %s", e.status.Name, e.status.Failed)
		}
	}
	f.advanceLocked()
	f.publishLocked()
	f.wake()
}

// nameOf is what a file that could not be validated is called: the name it gives, if that
// much can be read, else the file's name without its extension.
func nameOf(path string) string {
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	data, err := os.ReadFile(path)
	if err != nil || len(data) > 1<<20 {
		return base
	}
	var doc struct {
		Name string `yaml:"name"`
	}
	if yaml.Unmarshal(data, &doc) != nil || doc.Name == "" || len(doc.Name) > 253 || strings.ContainsAny(doc.Name, " \t\r\n") {
		return base
	}
	return doc.Name
}

// oneLine joins a multi-line error (a file's list of problems) with "; ".
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ; ")), " ")
}
