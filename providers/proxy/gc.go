package proxy

import "runtime/debug"

// GCPercent is the GOGC a process serving the proxy runs with. At Go's default (100) the heap
// goal of a proxy is a few MB, so even the few small objects a request allocates start a
// collection every so often on a busy proxy, and once it has been busy each collection's
// stop-the-world start takes ~0.3 ms: enough to reach the p99 one request at a time. At 400
// the heap goal is 16 MB (the process stays near 30 MB resident) and collections are four
// times rarer.
const GCPercent = 400

// TuneGC sets GCPercent for this process unless the operator chose with GOGC. Call it in the
// process that serves the proxy, once it does; other processes keep Go's default.
func TuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
}
