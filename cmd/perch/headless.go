package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/internal/printable"
)

// Output formats of --output.
const (
	outputText = "text"
	outputJSON = "json"
)

func checkOutput(format string) error {
	if format != outputText && format != outputJSON {
		return badInput(fmt.Errorf("--output: want text or json, got %q", format))
	}
	return nil
}

// printEvent writes one line for ev: the journal's JSON object, or the time and a description.
// Either is printable: Describe makes the text so, and the JSON escapes what encoding/json
// leaves raw (C1 and bidi controls), decoding to the journal's event unchanged.
func printEvent(w io.Writer, ev engine.Event, spec *spec.Rollout, format string) error {
	if format == outputJSON {
		line, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", printable.JSON(line))
		return err
	}
	_, err := fmt.Fprintf(w, "%s  %s\n", ev.Time.UTC().Format(time.RFC3339), ev.Describe(spec))
	return err
}

// printEvents prints every event of the stream until the engine stops; it closes done after.
func printEvents(stream *engine.EventStream, w io.Writer, spec *spec.Rollout, format string, done chan<- struct{}) {
	defer close(done)
	for {
		ev, ok := stream.Next(context.Background())
		if !ok {
			return
		}
		if err := printEvent(w, ev, spec, format); err != nil {
			stream.Close() // a closed pipe must not stop the rollout; the journal keeps everything
			return
		}
	}
}
