// Command judgebench plays the judge benchmark's scenarios under each judge and prints the
// results table of metrics/README.md:
//
//	go run ./cmd/judgebench -runs 1000 > /tmp/judges.md
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/perchhq/perch/internal/judgebench"
)

func main() {
	runs := flag.Int("runs", 1000, "rollouts per scenario and judge")
	judges := flag.String("judges", "threshold,mannwhitney,sequential", "judges to compare, comma-separated")
	only := flag.String("scenario", "", "only scenarios whose name contains this")
	flag.Parse()
	if err := run(*runs, strings.Split(*judges, ","), *only); err != nil {
		fmt.Fprintln(os.Stderr, "judgebench:", err)
		os.Exit(1)
	}
}

func run(runs int, judges []string, only string) error {
	start := time.Now()
	var sums []judgebench.Summary
	for _, s := range judgebench.Scenarios() {
		if !strings.Contains(s.Name, only) {
			continue
		}
		for _, j := range judges {
			t := time.Now()
			out, err := judgebench.Run(j, s, runs)
			if err != nil {
				return err
			}
			sums = append(sums, judgebench.Summarize(j, s, out))
			fmt.Fprintf(os.Stderr, "%-12s %-48s %s\n", j, s.Name, time.Since(t).Round(time.Millisecond))
		}
	}
	fmt.Printf("%d runs per scenario and judge, a look every 30 s interval for 30 min; %s on %d cores.\n\n",
		runs, time.Since(start).Round(time.Second), runtime.GOMAXPROCS(0))
	if err := judgebench.WriteTable(os.Stdout, sums); err != nil {
		return err
	}
	fmt.Println()
	return judgebench.WriteTargets(os.Stdout, sums, judges)
}
