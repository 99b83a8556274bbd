package proxy

// Reconfigured builds, from cfg, a proxy to put in p's place: it starts at p's weight and
// segments and records into p's observations (its Source) and Prometheus series, so a
// long-lived proxy can change its backends, transport or options without losing the history a
// rollout is judged on nor resetting its counters. cfg's Resolution and Retention are not
// used: the observations are p's. Requests p is serving finish on p, on the connections they
// have, which then close (p keeps no idle backend connection from now on); p's weight and
// segments no longer follow the new proxy's.
func (p *Proxy) Reconfigured(cfg Config) (*Proxy, error) {
	next, err := New(cfg)
	if err != nil {
		return nil, err
	}
	next.source, next.exporter = p.source, p.exporter
	next.canaryPercent.Store(p.canaryPercent.Load())
	next.segments.set.Store(p.segments.set.Load())
	for _, u := range p.upstreams {
		u.retire()
	}
	return next, nil
}
