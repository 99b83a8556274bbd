// Package hooks runs a rollout's hooks: webhooks, commands and load tests (spec.Hook). The
// engine decides when; this package only runs one and says how it went, bounded in time and
// in the output it keeps.
//
//   - An exec hook runs its command directly (never through a shell) in a process group of
//     its own, with perch's environment plus PERCH_ROLLOUT, PERCH_STEP (1 for the first),
//     PERCH_WEIGHT and PERCH_CANARY. Exit status 0 passes. When its timeout passes or it is
//     cancelled, the whole group gets SIGTERM and, KillGrace later, SIGKILL; whatever the
//     command left running in its group when it exits is killed too. The last MaxOutput bytes
//     of stdout and stderr (interleaved) are kept.
//   - A webhook is a POST of a JSON Payload to the templated URL, with the configured headers
//     (${NAME} read from the environment). A 2xx answer passes; redirects are followed only
//     within the same scheme and host, at most three; the first MaxOutput bytes of the answer
//     are kept.
//   - A load test sends GET requests at a steady rate until its context ends, from a fixed
//     pool of workers over reused connections, and reports how many were sent and failed.
package hooks
