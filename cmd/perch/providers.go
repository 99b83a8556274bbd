package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/internal/envexpand"
	"github.com/perchhq/perch/metrics/cloudwatch"
	"github.com/perchhq/perch/providers/alb"
	"github.com/perchhq/perch/providers/gatewayapi"
	"github.com/perchhq/perch/providers/istio"
	"github.com/perchhq/perch/providers/kube"
	"github.com/perchhq/perch/providers/proxy/admin"
)

// Factories of the cloud and mesh providers: each turns its block of the rollout file into
// the provider package's own configuration.

func albRouter(ctx context.Context, spec *spec.Rollout, flags connectFlags) (engine.Router, error) {
	a := spec.Traffic.ALB
	cfg := alb.Config{
		Region: a.Region, ListenerARN: a.ListenerARN, RuleARN: a.RuleARN,
		StableTargetGroupARN: a.StableTargetGroupARN, CanaryTargetGroupARN: a.CanaryTargetGroupARN,
		Profile: flags.awsProfile,
	}
	if a.Stickiness != nil {
		cfg.Stickiness = time.Duration(a.Stickiness.Duration)
	}
	return alb.New(ctx, cfg)
}

// kubeConnector reaches a cluster; tests put a fake dynamic client in its place.
type kubeConnector func(flags connectFlags) (*kube.Cluster, error)

func connectKube(flags connectFlags) (*kube.Cluster, error) {
	return kube.Connect(kube.ConnectOptions{Kubeconfig: flags.kubeconfig, Context: flags.kubeContext})
}

func istioRouter(connect kubeConnector) routerFactory {
	return func(_ context.Context, spec *spec.Rollout, flags connectFlags) (engine.Router, error) {
		cluster, err := connect(flags)
		if err != nil {
			return nil, err
		}
		v := spec.Traffic.Istio
		return istio.New(cluster.Client, cluster.Namespace, istio.Config{
			Namespace: v.Namespace, VirtualService: v.VirtualService, Route: v.Route,
			Stable:  istio.Destination{Host: v.Stable.Host, Subset: v.Stable.Subset},
			Canary:  istio.Destination{Host: v.Canary.Host, Subset: v.Canary.Subset},
			Cluster: cluster.Where,
		})
	}
}

func gatewayAPIRouter(connect kubeConnector) routerFactory {
	return func(_ context.Context, spec *spec.Rollout, flags connectFlags) (engine.Router, error) {
		cluster, err := connect(flags)
		if err != nil {
			return nil, err
		}
		g := spec.Traffic.GatewayAPI
		return gatewayapi.New(cluster.Client, cluster.Namespace, gatewayapi.Config{
			Namespace: g.Namespace, HTTPRoute: g.HTTPRoute, StableBackend: g.StableBackend, CanaryBackend: g.CanaryBackend,
			Cluster: cluster.Where,
		})
	}
}

func cloudwatchSource(ctx context.Context, spec *spec.Rollout, _ engine.Router, flags connectFlags) (engine.Source, error) {
	return cloudwatch.New(ctx, cloudwatch.Config{Region: spec.Metrics.CloudWatch.Region, Profile: flags.awsProfile})
}

// standaloneProxyRouter drives a `perch proxy` through its admin API. The proxy keeps its
// weight itself (in its state file), so a resumed run reads it back rather than restoring it.
// ${NAME} in the address and the token is read from the environment.
func standaloneProxyRouter(_ context.Context, spec *spec.Rollout, _ connectFlags) (engine.Router, error) {
	p := spec.Traffic.Proxy
	address, err := envexpand.Expand(p.Admin, os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("%s: traffic.proxy.admin: %w", spec.Where("traffic.proxy.admin"), err)
	}
	token, err := envexpand.Expand(p.AdminToken, os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("%s: traffic.proxy.adminToken: %w", spec.Where("traffic.proxy.adminToken"), err)
	}
	return admin.New(admin.Config{Address: address, Token: token})
}
