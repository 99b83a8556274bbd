package engine

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/perchhq/perch/engine/hooks"
	"github.com/perchhq/perch/engine/spec"
)

// JournalVersion is the journal format written by this build. Format 2 counts steps from 1 in
// events (as every output scripts read does); format 1 counted them from 0. Both are read, and
// a journal is appended to in its own format.
const JournalVersion = 2

// Header is the first line of a journal: the rollout it records.
type Header struct {
	Journal int           `json:"perchJournal"`
	Created time.Time     `json:"created"`
	Spec    *spec.Rollout `json:"spec"`
}

// Recording is a journal as read back: its header and every complete event.
type Recording struct {
	Header Header
	Events []Event
	// Warnings are problems tolerated while reading, such as a torn last line.
	Warnings []string
	// size is the length of the journal's good prefix, for appending after a torn line.
	size int64
	// needsNewline is set when the last good event lacks its line end.
	needsNewline bool
}

// Fold is the state the recording ends in.
func (r *Recording) Fold() State {
	st := NewState(r.Header.Spec)
	for _, ev := range r.Events {
		st.Apply(ev)
	}
	return st
}

// Journal appends events to a JSON Lines file, each one flushed and fsynced before Append
// returns, so whatever the engine published survives a crash.
type Journal struct {
	f       *os.File
	path    string
	version int // the format its events are written in
}

// CreateJournal starts a new journal at path with the header for rollout. It refuses to overwrite
// an existing file: a journal is a record, and resuming one is OpenJournal's job. The file is
// readable by its owner only (0600): it records who did what to the release, with the reasons
// and alert texts they gave.
func CreateJournal(path string, rollout *spec.Rollout, now time.Time) (*Journal, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("journal %s already exists (resume it with --resume, or choose another --journal)", path)
		}
		return nil, fmt.Errorf("create journal: %w", err)
	}
	j := &Journal{f: f, path: path, version: JournalVersion}
	line, err := json.Marshal(Header{Journal: JournalVersion, Created: now.UTC(), Spec: rollout})
	if err == nil {
		err = j.write(line)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("write journal %s: %w", path, err)
	}
	return j, nil
}

// OpenJournal reads the journal at path and opens it for appending after its last complete
// event, dropping a torn last line.
func OpenJournal(path string) (*Journal, *Recording, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open journal: %w", err)
	}
	rec, err := ReadJournal(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	j := &Journal{f: f, path: path, version: rec.Header.Journal}
	err = f.Truncate(rec.size)
	if err == nil {
		_, err = f.Seek(rec.size, io.SeekStart)
	}
	if err == nil && rec.needsNewline {
		err = j.write(nil)
	}
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("reopen journal %s: %w", path, err)
	}
	return j, rec, nil
}

// Path is the journal's file name.
func (j *Journal) Path() string { return j.path }

// Append writes one event and waits until it is on disk.
func (j *Journal) Append(ev Event) error {
	var v any = ev
	if j.version == 1 {
		v = wireEvent(ev) // format 1 counts steps from 0
	}
	line, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode event %d: %w", ev.Seq, err)
	}
	if err := j.write(line); err != nil {
		return fmt.Errorf("write journal %s: %w", j.path, err)
	}
	return nil
}

func (j *Journal) write(line []byte) error {
	if _, err := j.f.Write(append(line, '\n')); err != nil {
		return err
	}
	return j.f.Sync()
}

// Close closes the file.
func (j *Journal) Close() error { return j.f.Close() }

// LoadRecording reads the journal at path for replay.
func LoadRecording(path string) (*Recording, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rec, err := ReadJournal(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rec, nil
}

// ReadJournal reads a journal. A last line cut short by a crash is dropped with a warning; any
// other line that is not a valid event is an error naming its line number.
func ReadJournal(r io.Reader) (*Recording, error) {
	br := bufio.NewReader(r)
	rec := &Recording{}
	var offset int64
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
		if len(line) == 0 && errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		complete := bytes.HasSuffix(line, []byte("\n"))
		perr := rec.parseLine(lineNo, bytes.TrimSpace(line))
		switch {
		case perr == nil:
			offset += int64(len(line))
			rec.size = offset
			rec.needsNewline = !complete
		case !complete && lineNo > 1:
			rec.Warnings = append(rec.Warnings, fmt.Sprintf("line %d: dropped a torn last line (the process stopped mid-write)", lineNo))
		default:
			return nil, fmt.Errorf("line %d: %w", lineNo, perr)
		}
		if !complete {
			break
		}
	}
	if rec.Header.Spec == nil {
		return nil, errors.New("empty journal")
	}
	return rec, nil
}

func (rec *Recording) parseLine(lineNo int, line []byte) error {
	if lineNo == 1 {
		var h Header
		if err := strictUnmarshal(line, &h); err != nil || h.Journal == 0 || h.Spec == nil {
			return errors.New("not a perch journal (the first line is not a journal header)")
		}
		if h.Journal > JournalVersion {
			return fmt.Errorf("journal format %d is newer than this perch understands (%d)", h.Journal, JournalVersion)
		}
		if err := h.Spec.Recheck(); err != nil {
			return fmt.Errorf("the rollout in the journal header is invalid: %w", err)
		}
		rec.Header = h
		return nil
	}
	var ev Event
	if err := strictUnmarshal(line, &ev); err != nil {
		return fmt.Errorf("not a journal event: %w", err)
	}
	if rec.Header.Journal == 1 {
		ev.Step++ // format 1 counted steps from 0
	}
	want := int64(1)
	if n := len(rec.Events); n > 0 {
		want = rec.Events[n-1].Seq + 1
	}
	if ev.Seq != want {
		return fmt.Errorf("event seq %d where %d was expected", ev.Seq, want)
	}
	if err := checkEvent(rec.Header.Spec, ev); err != nil {
		return err
	}
	rec.Events = append(rec.Events, ev)
	return nil
}

func strictUnmarshal(line []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// CheckEvent rejects an event the reducer could not apply to rollout: what ReadJournal checks
// of each line, for events read one at a time from elsewhere (a replica's store).
func CheckEvent(rollout *spec.Rollout, ev Event) error { return checkEvent(rollout, ev) }

// checkEvent rejects an event the reducer could not apply to rollout.
func checkEvent(rollout *spec.Rollout, ev Event) error {
	if ev.Step < 0 || ev.Step >= len(rollout.Steps) {
		return fmt.Errorf("event %d: step %d outside the rollout's %d steps", ev.Seq, ev.Step+1, len(rollout.Steps))
	}
	//exhaustive:enforce
	switch ev.Type {
	case EventWeightSet, EventWeightFailed:
		if ev.Weight == nil || *ev.Weight < 0 || *ev.Weight > 100 {
			return fmt.Errorf("event %d: %s needs a weight in 0..100", ev.Seq, ev.Type)
		}
	case EventReconciled, EventStepStarted:
		if ev.Weight != nil && (*ev.Weight < 0 || *ev.Weight > 100) {
			return fmt.Errorf("event %d: weight %d outside 0..100", ev.Seq, *ev.Weight)
		}
	case EventFlagRead, EventFlagSet, EventFlagRestored:
		if ev.Percent == nil || *ev.Percent < -1 || *ev.Percent > 100 || !slices.Contains(rollout.FlagNames(), ev.Flag) {
			return fmt.Errorf("event %d: %s needs a flag the rollout sets and a percent in -1..100", ev.Seq, ev.Type)
		}
		if ev.Type == EventFlagRead && len(ev.Saved) == 0 {
			return fmt.Errorf("event %d: %s needs what restores the flag (saved)", ev.Seq, ev.Type)
		}
	case EventDryRun:
		switch ev.Would {
		case WouldRollBack, WouldHold, WouldBlock:
		default:
			return fmt.Errorf("event %d: %s: unknown action %q", ev.Seq, ev.Type, ev.Would)
		}
		if ev.Check == "" {
			return fmt.Errorf("event %d: %s needs the check", ev.Seq, ev.Type)
		}
	case EventFlagFailed:
		if !slices.Contains(rollout.FlagNames(), ev.Flag) {
			return fmt.Errorf("event %d: %s names flag %q, which the rollout does not set", ev.Seq, ev.Type, ev.Flag)
		}
	case EventHookStarted, EventHookFinished:
		if ev.Hook == nil || ev.Hook.Index < 0 || ev.Hook.Index >= len(rollout.Hooks) || rollout.Hooks[ev.Hook.Index].On != ev.Hook.On ||
			ev.Hook.Step < 0 || ev.Hook.Step > len(rollout.Steps) {
			return fmt.Errorf("event %d: %s needs a hook of the rollout (index and on)", ev.Seq, ev.Type)
		}
		if ev.Type == EventHookFinished && !slices.Contains([]hooks.Outcome{hooks.OK, hooks.Failed, hooks.TimedOut, hooks.Canceled}, ev.Hook.Outcome) {
			return fmt.Errorf("event %d: %s has no known outcome (%q)", ev.Seq, ev.Type, ev.Hook.Outcome)
		}
	case EventRolloutStarted, EventAnalysisStarted, EventAnalysis, EventStepPassed, EventPaused,
		EventResumed, EventHeld, EventRollbackStarted, EventRolledBack, EventPromoteStarted,
		EventPromoted, EventCommandRefused, EventStopped, EventNote, EventSegmentsSet, EventSegmentsFailed,
		EventWindowOverride:
	default:
		return fmt.Errorf("event %d: unknown type %q", ev.Seq, ev.Type)
	}
	return nil
}

// syncDir makes a new file's directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
