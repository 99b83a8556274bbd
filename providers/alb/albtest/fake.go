// Package albtest is a fake Elastic Load Balancing v2 endpoint for tests: an http.Handler
// that speaks the AWS Query protocol (form-encoded POST in, XML out, <ErrorResponse> for
// errors) for DescribeRules, ModifyRule, CreateRule, DeleteRule, DescribeTags,
// DescribeListeners and ModifyListener, holding one listener and a few rules (with their
// priorities and tags), so the real SDK client can be pointed at it.
package albtest

import (
	"bytes"
	_ "embed"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

//go:embed fixture.xml
var fixtureXML []byte

// ARNs in the fixture.
const (
	Listener       = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/checkout/50dc6c495c0c9188/f2f7dc8efc522ab2"
	WeightedRule   = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/checkout/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"
	ThreeGroupRule = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/checkout/50dc6c495c0c9188/f2f7dc8efc522ab2/1a2b3c4d5e6f7a8b"
	StableOnlyRule = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/checkout/50dc6c495c0c9188/f2f7dc8efc522ab2/0f1e2d3c4b5a6978"
	FixedRule      = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/checkout/50dc6c495c0c9188/f2f7dc8efc522ab2/ffeeddccbbaa9988"
	DefaultRule    = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/checkout/50dc6c495c0c9188/f2f7dc8efc522ab2/5b4f9a7e3c2d1a0b"
	MissingRule    = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/checkout/50dc6c495c0c9188/f2f7dc8efc522ab2/0000000000000000"
	Stable         = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/checkout-stable/73e2d6bc24d8a067"
	Canary         = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/checkout-canary/1f2e3d4c5b6a7980"
)

const xmlns = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"

// APIError is an error answer: the HTTP status and the <Error> element's code and message.
type APIError struct {
	Status  int
	Code    string
	Message string
}

// Errors as ELBv2 sends them.
var (
	Throttled    = APIError{Status: 400, Code: "Throttling", Message: "Rate exceeded"}
	AccessDenied = APIError{Status: 403, Code: "AccessDenied", Message: "User: arn:aws:sts::123456789012:assumed-role/deployer/ci is not authorized to perform: elasticloadbalancing:ModifyRule on resource: " + WeightedRule + " because no identity-based policy allows the elasticloadbalancing:ModifyRule action"}
)

// Request is one call the fake answered.
type Request struct {
	Action    string
	Form      url.Values
	Region    string // from the SigV4 credential scope
	AccessKey string // the access key ID that signed it
}

// Fake is the ELBv2 endpoint. Its zero value is not usable; call New.
type Fake struct {
	mu           sync.Mutex
	targetGroups map[string]bool
	listeners    map[string]*node // <member> of Listeners, by ARN
	rules        map[string]*node // <member> of Rules, by ARN
	ruleOrder    []string         // by priority, as DescribeRules lists them
	tags         map[string][]Tag // by resource ARN
	failures     map[string][]APIError
	requests     []Request
	seq          int
}

// New is a fake holding the fixture: one listener and four rules.
func New() *Fake {
	root, err := parseXML(fixtureXML)
	if err != nil {
		panic(fmt.Sprintf("albtest fixture: %v", err))
	}
	f := &Fake{targetGroups: map[string]bool{}, listeners: map[string]*node{}, rules: map[string]*node{}, failures: map[string][]APIError{},
		tags: map[string][]Tag{}}
	for _, tg := range root.child("TargetGroups").members() {
		f.targetGroups[tg.text] = true
	}
	for _, l := range root.child("Listeners").members() {
		f.listeners[l.textOf("ListenerArn")] = l
	}
	for _, r := range root.child("Rules").members() {
		arn := r.textOf("RuleArn")
		f.rules[arn] = r
		f.ruleOrder = append(f.ruleOrder, arn)
	}
	return f
}

// FailNext makes the next calls of action answer with errs, one each, in order.
func (f *Fake) FailNext(action string, errs ...APIError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures[action] = append(f.failures[action], errs...)
}

// Requests is every call answered so far, in order.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.requests...)
}

// Actions is the Action of every call so far, in order.
func (f *Fake) Actions() []string {
	var out []string
	for _, r := range f.Requests() {
		out = append(out, r.Action)
	}
	return out
}

// Tag is a resource tag.
type Tag struct{ Key, Value string }

// RuleARNs is the ARN of every rule but the default, in priority order.
func (f *Fake) RuleARNs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ruleOrder...)
}

// Tags is the tags of the resource at arn.
func (f *Fake) Tags(arn string) []Tag {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Tag(nil), f.tags[arn]...)
}

// Rule is the rule at arn as text, fields sorted, for comparing before and after.
func (f *Fake) Rule(arn string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rules[arn].canonical()
}

// Listener is the listener at arn as text, fields sorted.
func (f *Fake) Listener(arn string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.listeners[arn].canonical()
}

// WithoutWeights is a rule or listener as text (see Rule) with every target-group weight
// left out: what must not change when perch moves traffic.
func WithoutWeights(canonical string) string {
	return weightLine.ReplaceAllString(canonical, "")
}

var weightLine = regexp.MustCompile(`(?m)^ *Weight = "\d*"\n`)

// Weights are the target-group weights of the rule's (or listener's) forward action, by
// target-group ARN.
func (f *Fake) Weights(arn string) map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.rules[arn]
	actions := "Actions"
	if n == nil {
		n, actions = f.listeners[arn], "DefaultActions"
	}
	out := map[string]int{}
	for _, a := range n.child(actions).members() {
		fc := a.child("ForwardConfig")
		if a.textOf("Type") != "forward" || fc == nil {
			continue
		}
		for _, tg := range fc.child("TargetGroups").members() {
			var w int
			fmt.Sscan(tg.textOf("Weight"), &w)
			out[tg.textOf("TargetGroupArn")] = w
		}
	}
	return out
}

var credential = regexp.MustCompile(`Credential=([^/]+)/\d{8}/([^/]+)/elasticloadbalancing/aws4_request`)

// ServeHTTP answers one Query-protocol request.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form, err := url.ParseQuery(string(body))
	if r.Method != http.MethodPost || err != nil || form.Get("Version") != "2015-12-01" {
		writeError(w, APIError{Status: 400, Code: "MalformedQueryString", Message: "want a form-encoded POST with Version=2015-12-01"})
		return
	}
	var key, region string
	if m := credential.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		key, region = m[1], m[2]
	}
	action := form.Get("Action")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, Request{Action: action, Form: form, Region: region, AccessKey: key})
	if region == "" {
		writeError(w, APIError{Status: 403, Code: "MissingAuthenticationToken", Message: "Request is missing Authentication Token"})
		return
	}
	if q := f.failures[action]; len(q) > 0 {
		f.failures[action] = q[1:]
		writeError(w, q[0])
		return
	}
	var result *node
	var apiErr *APIError
	switch action {
	case "DescribeRules":
		result, apiErr = f.describeRules(form)
	case "ModifyRule":
		result, apiErr = f.modifyRule(form)
	case "DescribeListeners":
		result, apiErr = f.describeListeners(form)
	case "ModifyListener":
		result, apiErr = f.modifyListener(form)
	case "CreateRule":
		result, apiErr = f.createRule(form)
	case "DeleteRule":
		result, apiErr = f.deleteRule(form)
	case "DescribeTags":
		result, apiErr = f.describeTags(form)
	default:
		apiErr = &APIError{Status: 400, Code: "InvalidAction", Message: fmt.Sprintf("The action %s is not valid for this web service.", action)}
	}
	if apiErr != nil {
		writeError(w, *apiErr)
		return
	}
	f.seq++
	var b bytes.Buffer
	fmt.Fprintf(&b, `<%sResponse xmlns="%s">`, action, xmlns)
	result.writeXML(&b)
	fmt.Fprintf(&b, `<ResponseMetadata><RequestId>6c8f2b2e-0000-4000-8000-%012d</RequestId></ResponseMetadata></%sResponse>`, f.seq, action)
	w.Header().Set("Content-Type", "text/xml")
	w.Write(b.Bytes())
}

func writeError(w http.ResponseWriter, e APIError) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.Status)
	var b bytes.Buffer
	fmt.Fprintf(&b, `<ErrorResponse xmlns="%s"><Error><Type>Sender</Type><Code>%s</Code><Message>`, xmlns, e.Code)
	xml.EscapeText(&b, []byte(e.Message))
	b.WriteString(`</Message></Error><RequestId>0f4ee1c8-7a0b-4d2e-9c1a-3b5d7e9f1a2c</RequestId></ErrorResponse>`)
	w.Write(b.Bytes())
}

func list(name string, items ...*node) *node {
	n := &node{name: name}
	for _, it := range items {
		c := it.clone()
		c.name = "member"
		n.children = append(n.children, c)
	}
	return n
}

// defaultRule is the listener's default rule as DescribeRules shows it: no conditions, the
// listener's default actions.
func (f *Fake) defaultRule() *node {
	actions := f.listeners[Listener].child("DefaultActions").clone()
	actions.name = "Actions"
	return &node{name: "member", children: []*node{
		{name: "IsDefault", text: "true"}, {name: "Conditions"}, {name: "Priority", text: "default"},
		actions, {name: "RuleArn", text: DefaultRule},
	}}
}

func (f *Fake) describeRules(form url.Values) (*node, *APIError) {
	var out []*node
	if arns, _, _ := fromForm(form, "RuleArns"); arns != nil && len(arns.members()) > 0 {
		for _, m := range arns.members() {
			r := f.rules[m.text]
			if m.text == DefaultRule {
				r = f.defaultRule()
			}
			if r == nil {
				return nil, &APIError{Status: 400, Code: "RuleNotFound", Message: "One or more rules not found"}
			}
			out = append(out, r)
		}
	} else if l := form.Get("ListenerArn"); l != "" {
		if f.listeners[l] == nil {
			return nil, &APIError{Status: 400, Code: "ListenerNotFound", Message: "One or more listeners not found"}
		}
		for _, arn := range f.ruleOrder {
			out = append(out, f.rules[arn])
		}
		out = append(out, f.defaultRule())
	} else {
		return nil, &APIError{Status: 400, Code: "ValidationError", Message: "Either a listener or rules must be specified"}
	}
	res := &node{name: "DescribeRulesResult"}
	res.children = append(res.children, list("Rules", out...))
	return res, nil
}

func (f *Fake) describeListeners(form url.Values) (*node, *APIError) {
	arns, _, _ := fromForm(form, "ListenerArns")
	if arns == nil || len(arns.members()) == 0 {
		return nil, &APIError{Status: 400, Code: "ValidationError", Message: "A load balancer ARN or listener ARNs must be specified"}
	}
	var out []*node
	for _, m := range arns.members() {
		l := f.listeners[m.text]
		if l == nil {
			return nil, &APIError{Status: 400, Code: "ListenerNotFound", Message: "One or more listeners not found"}
		}
		out = append(out, l)
	}
	res := &node{name: "DescribeListenersResult"}
	res.children = append(res.children, list("Listeners", out...))
	return res, nil
}

// modifyRule replaces the fields the request gives (Actions, Conditions, Transforms) and
// keeps the rest, as ModifyRule does.
func (f *Fake) modifyRule(form url.Values) (*node, *APIError) {
	arn := form.Get("RuleArn")
	if arn == DefaultRule {
		return nil, &APIError{Status: 400, Code: "OperationNotPermitted", Message: "The default rule's actions can only be changed with ModifyListener"}
	}
	rule := f.rules[arn]
	if rule == nil {
		return nil, &APIError{Status: 400, Code: "RuleNotFound", Message: "One or more rules not found"}
	}
	next := rule.clone()
	for _, field := range []string{"Actions", "Conditions", "Transforms"} {
		n, ok, err := fromForm(form, field)
		if err != nil {
			return nil, &APIError{Status: 400, Code: "ValidationError", Message: err.Error()}
		}
		if ok {
			next.set(n)
		}
	}
	if e := f.checkActions(next.child("Actions")); e != nil {
		return nil, e
	}
	f.rules[arn] = next
	res := &node{name: "ModifyRuleResult"}
	res.children = append(res.children, list("Rules", next))
	return res, nil
}

func (f *Fake) modifyListener(form url.Values) (*node, *APIError) {
	arn := form.Get("ListenerArn")
	l := f.listeners[arn]
	if l == nil {
		return nil, &APIError{Status: 400, Code: "ListenerNotFound", Message: "One or more listeners not found"}
	}
	next := l.clone()
	fields := map[string]bool{}
	for key := range form {
		field, _, _ := strings.Cut(key, ".")
		fields[field] = field != "Action" && field != "Version" && field != "ListenerArn"
	}
	for field, given := range fields {
		if !given {
			continue
		}
		n, _, err := fromForm(form, field)
		if err != nil {
			return nil, &APIError{Status: 400, Code: "ValidationError", Message: err.Error()}
		}
		if len(n.children) == 0 {
			n.text = form.Get(field)
		}
		next.set(n)
	}
	if e := f.checkActions(next.child("DefaultActions")); e != nil {
		return nil, e
	}
	f.listeners[arn] = next
	res := &node{name: "ModifyListenerResult"}
	res.children = append(res.children, list("Listeners", next))
	return res, nil
}

// checkActions refuses what the ALB refuses, and keeps the OIDC client secret it holds
// (DescribeRules never shows it; a modify says UseExistingClientSecret instead).
func (f *Fake) checkActions(next *node) *APIError {
	if next == nil || len(next.members()) == 0 {
		return &APIError{Status: 400, Code: "ValidationError", Message: "At least one action must be specified"}
	}
	for _, a := range next.members() {
		switch a.textOf("Type") {
		case "authenticate-oidc":
			oidc := a.child("AuthenticateOidcConfig")
			if oidc.textOf("ClientSecret") == "" && oidc.textOf("UseExistingClientSecret") != "true" {
				return &APIError{Status: 400, Code: "ValidationError", Message: "A client secret must be specified for an authenticate-oidc action"}
			}
			oidc.remove("UseExistingClientSecret")
			oidc.remove("ClientSecret")
		case "forward":
			var groups []*node
			if fc := a.child("ForwardConfig"); fc != nil && fc.child("TargetGroups") != nil {
				groups = fc.child("TargetGroups").members()
			}
			if a.textOf("TargetGroupArn") != "" && len(groups) > 1 {
				return &APIError{Status: 400, Code: "ValidationError", Message: "You cannot specify both a target group ARN and a forward config with multiple target groups"}
			}
			for _, g := range groups {
				if !f.targetGroups[g.textOf("TargetGroupArn")] {
					return &APIError{Status: 400, Code: "TargetGroupNotFound", Message: fmt.Sprintf("Target group '%s' not found", g.textOf("TargetGroupArn"))}
				}
				var w int
				if _, err := fmt.Sscan(g.textOf("Weight"), &w); err != nil || w < 0 || w > 999 {
					return &APIError{Status: 400, Code: "ValidationError", Message: "Target group weight must be between 0 and 999"}
				}
			}
		}
	}
	return nil
}

// Transport answers requests by calling the fake directly, with no network: for tests that
// run the SDK inside a testing/synctest bubble, where a real connection cannot be made.
func (f *Fake) Transport() http.RoundTripper { return handlerTransport{f} }

type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

// Limits of listener rules.
const (
	minPriority = 1
	maxPriority = 50000
)

// createRule adds a rule at a free priority, as CreateRule does, with the tags given.
func (f *Fake) createRule(form url.Values) (*node, *APIError) {
	listener := form.Get("ListenerArn")
	if f.listeners[listener] == nil {
		return nil, &APIError{Status: 400, Code: "ListenerNotFound", Message: "One or more listeners not found"}
	}
	priority, err := strconv.Atoi(form.Get("Priority"))
	if err != nil || priority < minPriority || priority > maxPriority {
		return nil, &APIError{Status: 400, Code: "ValidationError", Message: fmt.Sprintf("1 validation error detected: Value '%s' at 'priority' failed to satisfy constraint: Member must have value between 1 and 50000", form.Get("Priority"))}
	}
	for _, arn := range f.ruleOrder {
		if f.rules[arn].textOf("Priority") == strconv.Itoa(priority) {
			return nil, &APIError{Status: 400, Code: "PriorityInUse", Message: fmt.Sprintf("Priority '%d' is currently in use", priority)}
		}
	}
	conditions, ok, err := fromForm(form, "Conditions")
	if err != nil || !ok || len(conditions.members()) == 0 {
		return nil, &APIError{Status: 400, Code: "ValidationError", Message: "A rule must have at least one condition"}
	}
	for _, c := range conditions.members() {
		if c.child("Values") != nil && (c.child("HostHeaderConfig") != nil || c.child("PathPatternConfig") != nil) {
			return nil, &APIError{Status: 400, Code: "ValidationError", Message: "You cannot specify both 'Values' and a condition configuration in the same condition"}
		}
	}
	actions, _, err := fromForm(form, "Actions")
	if err != nil {
		return nil, &APIError{Status: 400, Code: "ValidationError", Message: err.Error()}
	}
	if e := f.checkActions(actions); e != nil {
		return nil, e
	}
	for _, a := range actions.members() {
		// A forward to one group is shown with its ARN as well, as the ALB shows it.
		if fc := a.child("ForwardConfig"); a.textOf("Type") == "forward" && fc != nil && len(fc.child("TargetGroups").members()) == 1 && a.child("TargetGroupArn") == nil {
			a.children = append(a.children, &node{name: "TargetGroupArn", text: fc.child("TargetGroups").members()[0].textOf("TargetGroupArn")})
		}
	}
	f.seq++
	arn := strings.Replace(listener, ":listener/", ":listener-rule/", 1) + fmt.Sprintf("/%016x", 0xfeed0000+f.seq)
	rule := &node{name: "member", children: []*node{
		{name: "IsDefault", text: "false"}, conditions, {name: "Priority", text: strconv.Itoa(priority)}, actions, {name: "RuleArn", text: arn},
	}}
	f.rules[arn] = rule
	f.ruleOrder = append(f.ruleOrder, arn)
	sort.SliceStable(f.ruleOrder, func(i, j int) bool {
		a, _ := strconv.Atoi(f.rules[f.ruleOrder[i]].textOf("Priority"))
		b, _ := strconv.Atoi(f.rules[f.ruleOrder[j]].textOf("Priority"))
		return a < b
	})
	if tags, ok, _ := fromForm(form, "Tags"); ok {
		for _, t := range tags.members() {
			f.tags[arn] = append(f.tags[arn], Tag{Key: t.textOf("Key"), Value: t.textOf("Value")})
		}
	}
	res := &node{name: "CreateRuleResult"}
	res.children = append(res.children, list("Rules", rule))
	return res, nil
}

func (f *Fake) deleteRule(form url.Values) (*node, *APIError) {
	arn := form.Get("RuleArn")
	switch {
	case arn == DefaultRule:
		return nil, &APIError{Status: 400, Code: "OperationNotPermitted", Message: "Default rule cannot be deleted"}
	case f.rules[arn] == nil:
		return nil, &APIError{Status: 400, Code: "RuleNotFound", Message: "One or more rules not found"}
	}
	delete(f.rules, arn)
	delete(f.tags, arn)
	f.ruleOrder = slices.DeleteFunc(f.ruleOrder, func(a string) bool { return a == arn })
	return &node{name: "DeleteRuleResult"}, nil
}

func (f *Fake) describeTags(form url.Values) (*node, *APIError) {
	arns, _, _ := fromForm(form, "ResourceArns")
	if arns == nil || len(arns.members()) == 0 {
		return nil, &APIError{Status: 400, Code: "ValidationError", Message: "ResourceArns must be specified"}
	}
	if len(arns.members()) > 20 {
		return nil, &APIError{Status: 400, Code: "ValidationError", Message: "1 validation error detected: Value at 'resourceArns' failed to satisfy constraint: Member must have length less than or equal to 20"}
	}
	var out []*node
	for _, m := range arns.members() {
		if f.rules[m.text] == nil && f.listeners[m.text] == nil && m.text != DefaultRule {
			return nil, &APIError{Status: 400, Code: "RuleNotFound", Message: "One or more rules not found"}
		}
		tags := &node{name: "Tags"}
		for _, t := range f.tags[m.text] {
			tags.children = append(tags.children, &node{name: "member", children: []*node{{name: "Key", text: t.Key}, {name: "Value", text: t.Value}}})
		}
		out = append(out, &node{name: "member", children: []*node{{name: "ResourceArn", text: m.text}, tags}})
	}
	res := &node{name: "DescribeTagsResult"}
	res.children = append(res.children, list("TagDescriptions", out...))
	return res, nil
}
