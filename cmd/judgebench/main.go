// Command judgebench plays the judge benchmark's scenarios and prints the tables of
// metrics/README.md: perch's default judge beside the oracle (Wald's SPRT told the truth), and
// every judge on the engine's scenarios:
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
	tables := flag.String("tables", "oracle,judges", "tables to print, comma-separated: oracle (perch beside the oracle), judges (every judge)")
	flag.Parse()
	if err := run(*runs, strings.Split(*judges, ","), *only, strings.Split(*tables, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "judgebench:", err)
		os.Exit(1)
	}
}

func run(runs int, judges []string, only string, tables []string) error {
	for _, t := range tables {
		var err error
		switch t {
		case "oracle":
			err = oracleTable(runs, only)
		case "judges":
			err = judgesTable(runs, judges, only)
		default:
			err = fmt.Errorf("unknown table %q (want oracle, judges)", t)
		}
		if err != nil {
			return err
		}
		fmt.Println()
	}
	return nil
}

func oracleTable(runs int, only string) error {
	start := time.Now()
	var cs []judgebench.Comparison
	for _, s := range judgebench.OracleScenarios() {
		if !strings.Contains(s.Name, only) {
			continue
		}
		t := time.Now()
		out, err := judgebench.Run("sequential", s, runs)
		if err != nil {
			return err
		}
		cs = append(cs, judgebench.Comparison{
			Perch:  judgebench.Summarize("sequential", s, out),
			Oracle: judgebench.Summarize("oracle", s, judgebench.RunOracle(s, runs)),
		})
		fmt.Fprintf(os.Stderr, "%-12s %-48s %s\n", "oracle", s.Name, time.Since(t).Round(time.Millisecond))
	}
	fmt.Printf("%d runs per scenario, an hour of one-minute intervals; %s on %d cores.\n\n",
		runs, time.Since(start).Round(time.Second), runtime.GOMAXPROCS(0))
	return judgebench.WriteComparison(os.Stdout, cs)
}

func judgesTable(runs int, judges []string, only string) error {
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
		if s.Truth == judgebench.Harmful {
			sums = append(sums, judgebench.Summarize("oracle", s, judgebench.RunOracle(s, runs)))
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
