// Package judgeapi is perch judge serve: perch's judges over HTTP, for release controllers
// that move traffic themselves (Argo Rollouts, Flagger) and ask whether the canary is good.
//
// A judges file (spec.Judges) names analyses, each a list of checks written as a rollout
// file's. A caller asks for an analysis's verdict for a run, a key it chooses (Argo Rollouts:
// an argument of the AnalysisRun; Flagger: the canary's namespace/name and checksum). The
// run's window opens when it first asks; every ask judges the whole window so far, at the
// file's analysis.interval, with engine.JudgeCheck: the same look, queries and judges a rollout
// uses, so the sequential judge's always-valid evidence accumulates across asks as it does
// across a step's looks. The checks of an analysis are one family (they share one
// false-alarm budget per run). A source that fails, a query with no data, or an ask before the
// first interval has passed is inconclusive, never a pass.
//
// Endpoints:
//
//	GET  /v1/analyses/NAME/verdict?run=RUN  200 {"verdict", "reason", "analysis", "run", "since", "checks"}
//	POST /v1/flagger/NAME[?hook=HOOK]       Flagger's webhook payload; 200 or 403, the reason in the body
//	GET  /healthz                           200
//
// For Flagger, a gate (confirm-traffic-increase, confirm-promotion; the default) gets 200 when
// the verdict is pass; the rollback hook (?hook=rollback) gets 200, "roll back", when it is
// fail. Everything else is 403.
//
// What a caller can make the server hold is bounded: runs (Config.MaxRuns, forgotten
// Config.RunTTL after their last ask, the least recently asked first when full), run ids
// (MaxRunID, a plain charset), bodies (MaxBody), asks judged at once (Config.MaxInFlight, 503
// beyond) and the time each takes (Config.LookTimeout, and the server's timeouts). With
// Config.Token every endpoint but /healthz wants it as a bearer token; Flagger, which sends no
// headers of a user's choosing, may send it as the webhook's metadata "token" instead.
package judgeapi
