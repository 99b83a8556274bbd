package main

import (
	"bytes"
	"errors"
	"io"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/perchhq/perch/engine/spec"
)

// The manifests in examples/argo and examples/flagger are read with only the fields their
// projects' CRDs define (unknown ones are errors), as those projects' Go types name them:
// https://github.com/argoproj/argo-rollouts/blob/master/pkg/apis/rollouts/v1alpha1/analysis_types.go
// (Metric, Argument, ValueFrom, WebMetric), .../v1alpha1/types.go (RolloutAnalysis,
// AnalysisRunArgument, ArgumentValueFrom) and
// https://github.com/fluxcd/flagger/blob/main/pkg/apis/flagger/v1beta1/canary.go (CanarySpec,
// CanaryAnalysis, CanaryWebhook). Only what the examples use is spelled out; the rest of a
// pod template or a service is left to Kubernetes.

type argoValueFrom struct {
	SecretKeyRef *struct {
		Name string `yaml:"name"`
		Key  string `yaml:"key"`
	} `yaml:"secretKeyRef"`
	FieldRef *struct {
		FieldPath string `yaml:"fieldPath"`
	} `yaml:"fieldRef"`
	PodTemplateHashValue string `yaml:"podTemplateHashValue"` // Rollout arguments only
}

type argoArg struct {
	Name      string         `yaml:"name"`
	Value     *string        `yaml:"value"`
	ValueFrom *argoValueFrom `yaml:"valueFrom"`
}

type argoMetric struct {
	Name                    string `yaml:"name"`
	Interval                string `yaml:"interval"`
	InitialDelay            string `yaml:"initialDelay"`
	Count                   *int   `yaml:"count"`
	SuccessCondition        string `yaml:"successCondition"`
	FailureCondition        string `yaml:"failureCondition"`
	FailureLimit            *int   `yaml:"failureLimit"`
	InconclusiveLimit       *int   `yaml:"inconclusiveLimit"`
	ConsecutiveErrorLimit   *int   `yaml:"consecutiveErrorLimit"`
	ConsecutiveSuccessLimit *int   `yaml:"consecutiveSuccessLimit"`
	Provider                struct {
		Web *struct {
			Method  string `yaml:"method"`
			URL     string `yaml:"url"`
			Headers []struct {
				Key   string `yaml:"key"`
				Value string `yaml:"value"`
			} `yaml:"headers"`
			Body           string `yaml:"body"`
			TimeoutSeconds int    `yaml:"timeoutSeconds"`
			JSONPath       string `yaml:"jsonPath"`
			Insecure       bool   `yaml:"insecure"`
		} `yaml:"web"`
	} `yaml:"provider"`
}

type kubeMeta struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
}

type analysisTemplate struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   kubeMeta `yaml:"metadata"`
	Spec       struct {
		Args    []argoArg    `yaml:"args"`
		Metrics []argoMetric `yaml:"metrics"`
	} `yaml:"spec"`
}

type rolloutAnalysis struct {
	Templates []struct {
		TemplateName string `yaml:"templateName"`
		ClusterScope bool   `yaml:"clusterScope"`
	} `yaml:"templates"`
	Args []argoArg `yaml:"args"`
}

type argoRollout struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   kubeMeta `yaml:"metadata"`
	Spec       struct {
		Replicas *int           `yaml:"replicas"`
		Selector map[string]any `yaml:"selector"`
		Template map[string]any `yaml:"template"` // a pod template
		Strategy struct {
			Canary struct {
				Steps []struct {
					SetWeight *int `yaml:"setWeight"`
					Pause     *struct {
						Duration string `yaml:"duration"`
					} `yaml:"pause"`
					Analysis *rolloutAnalysis `yaml:"analysis"`
				} `yaml:"steps"`
				Analysis *rolloutAnalysis `yaml:"analysis"`
			} `yaml:"canary"`
		} `yaml:"strategy"`
	} `yaml:"spec"`
}

type flaggerCanary struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   kubeMeta `yaml:"metadata"`
	Spec       struct {
		TargetRef struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
			Name       string `yaml:"name"`
		} `yaml:"targetRef"`
		Service  map[string]any `yaml:"service"`
		Analysis struct {
			Interval   string           `yaml:"interval"`
			Iterations int              `yaml:"iterations"`
			Threshold  int              `yaml:"threshold"`
			MaxWeight  int              `yaml:"maxWeight"`
			StepWeight int              `yaml:"stepWeight"`
			Metrics    []map[string]any `yaml:"metrics"`
			Webhooks   []struct {
				Name     string            `yaml:"name"`
				Type     string            `yaml:"type"`
				URL      string            `yaml:"url"`
				Timeout  string            `yaml:"timeout"`
				Retries  int               `yaml:"retries"`
				Metadata map[string]string `yaml:"metadata"`
			} `yaml:"webhooks"`
		} `yaml:"analysis"`
	} `yaml:"spec"`
}

// strictYAML reads the one document of file into v, refusing fields v does not have.
func strictYAML(t *testing.T, file string, v any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if err := dec.Decode(new(any)); !errors.Is(err, io.EOF) {
		t.Fatalf("%s: more than one document", file)
	}
}

func TestJudgeExamples(t *testing.T) {
	judges, err := spec.LoadJudges("../../examples/judge/judges.yaml")
	if err != nil {
		t.Fatal(err)
	}

	var tmpl analysisTemplate
	strictYAML(t, "../../examples/argo/analysistemplate.yaml", &tmpl)
	if tmpl.APIVersion != "argoproj.io/v1alpha1" || tmpl.Kind != "AnalysisTemplate" || len(tmpl.Spec.Metrics) != 1 {
		t.Fatalf("analysis template: %+v", tmpl)
	}
	m := tmpl.Spec.Metrics[0]
	if m.SuccessCondition != `result.verdict == "pass"` || m.FailureCondition != `result.verdict == "fail"` || m.Provider.Web == nil {
		t.Errorf("metric %+v: want the web provider and perch's verdict conditions", m)
	}
	// Inconclusive measurements keep Argo measuring: the limit is at least the count.
	if m.Count == nil || m.InconclusiveLimit == nil || *m.InconclusiveLimit < *m.Count || m.ConsecutiveSuccessLimit == nil || *m.ConsecutiveSuccessLimit < 1 {
		t.Errorf("metric %+v: want inconclusiveLimit ≥ count and a consecutiveSuccessLimit", m)
	}
	declared := map[string]bool{}
	for _, a := range tmpl.Spec.Args {
		declared[a.Name] = true
	}
	used := regexp.MustCompile(`\{\{\s*args\.([A-Za-z0-9_-]+)\s*\}\}`)
	templated := m.Provider.Web.URL
	for _, h := range m.Provider.Web.Headers {
		templated += " " + h.Value
	}
	for _, u := range used.FindAllStringSubmatch(templated, -1) {
		if !declared[u[1]] {
			t.Errorf("the template uses {{args.%s}} without declaring it", u[1])
		}
	}
	u, err := url.Parse(m.Provider.Web.URL)
	if err != nil || !strings.HasPrefix(u.Path, "/v1/analyses/") || !strings.HasSuffix(u.Path, "/verdict") || u.Query().Get("run") == "" {
		t.Errorf("web provider URL %q: want /v1/analyses/NAME/verdict?run=RUN", m.Provider.Web.URL)
	}

	var ro argoRollout
	strictYAML(t, "../../examples/argo/rollout.yaml", &ro)
	if ro.APIVersion != "argoproj.io/v1alpha1" || ro.Kind != "Rollout" {
		t.Fatalf("rollout: %s %s", ro.APIVersion, ro.Kind)
	}
	analyses := 0
	for i, st := range ro.Spec.Strategy.Canary.Steps {
		if st.Analysis == nil {
			continue
		}
		analyses++
		given := map[string]string{}
		for _, a := range st.Analysis.Args {
			switch {
			case a.Value != nil:
				given[a.Name] = *a.Value
			case a.ValueFrom != nil && (a.ValueFrom.PodTemplateHashValue == "Latest" || a.ValueFrom.FieldRef != nil):
				given[a.Name] = "x"
			default:
				t.Errorf("step %d: argument %s has no value", i, a.Name)
			}
		}
		for _, a := range tmpl.Spec.Args {
			if _, ok := given[a.Name]; !ok && a.Value == nil && a.ValueFrom == nil {
				t.Errorf("step %d: the template's argument %s is not given", i, a.Name)
			}
		}
		if st.Analysis.Templates[0].TemplateName != tmpl.Metadata.Name {
			t.Errorf("step %d names template %q", i, st.Analysis.Templates[0].TemplateName)
		}
		if _, ok := judges.Analyses[given["analysis"]]; !ok {
			t.Errorf("step %d asks for analysis %q, which the judges file does not have", i, given["analysis"])
		}
	}
	if analyses == 0 {
		t.Error("the rollout runs no analysis")
	}

	var c flaggerCanary
	strictYAML(t, "../../examples/flagger/canary.yaml", &c)
	if c.APIVersion != "flagger.app/v1beta1" || c.Kind != "Canary" || len(c.Spec.Analysis.Webhooks) == 0 {
		t.Fatalf("canary: %+v", c)
	}
	var types []string
	for _, w := range c.Spec.Analysis.Webhooks {
		u, err := url.Parse(w.URL)
		if err != nil {
			t.Fatalf("webhook %s: %v", w.Name, err)
		}
		name, ok := strings.CutPrefix(u.Path, "/v1/flagger/")
		if _, known := judges.Analyses[name]; !ok || !known {
			t.Errorf("webhook %s posts to %s: want /v1/flagger/NAME of an analysis of the judges file", w.Name, u.Path)
		}
		if u.Query().Get("hook") != w.Type {
			t.Errorf("webhook %s of type %s says hook=%s", w.Name, w.Type, u.Query().Get("hook"))
		}
		if w.Metadata["token"] == "" {
			t.Errorf("webhook %s carries no token", w.Name)
		}
		types = append(types, w.Type)
	}
	slices.Sort(types)
	if !slices.Equal(types, []string{"confirm-promotion", "rollback"}) {
		t.Errorf("webhook types %v", types)
	}
}
