package proxyd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/perchhq/perch/providers/proxy/admin"
)

// state is what a proxy keeps across restarts: the weight rollouts set and the segments.
type state struct {
	CanaryPercent int             `json:"canaryPercent"`
	Segments      []admin.Segment `json:"segments"`
}

// loadState reads the state file at path; found is false when there is none yet.
func loadState(path string) (st state, found bool, err error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return state{Segments: []admin.Segment{}}, false, nil
	case err != nil:
		return state{}, false, fmt.Errorf("state file: %w", err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return state{}, false, fmt.Errorf("state file %s is damaged (%v): move it aside to start at 0%%, or fix it", path, err)
	}
	if st.CanaryPercent < 0 || st.CanaryPercent > 100 {
		return state{}, false, fmt.Errorf("state file %s: canary weight %d outside 0..100", path, st.CanaryPercent)
	}
	if err := admin.CheckSegments(st.Segments); err != nil {
		return state{}, false, fmt.Errorf("state file %s: %w", path, err)
	}
	if st.Segments == nil {
		st.Segments = []admin.Segment{}
	}
	return st, true, nil
}

// saveState writes the state file so that a crash at any moment leaves either the old file or
// the new one whole: a temporary file beside it, synced, renamed over it, and the directory
// synced so the rename itself survives. The file is 0600; a directory perch creates is 0700.
func saveState(path string, st state) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename there is nothing left to remove
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("state file: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("state file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("state file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	return nil
}
