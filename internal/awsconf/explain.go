package awsconf

import "fmt"

// Call is an AWS API call as its error messages name it: the words Explain builds them from.
type Call struct {
	// Doing is what perch was doing ("read ALB rule R", "CloudWatch in eu-west-1, QUERY"). It
	// leads the messages about AWS not being reached or not answering at all.
	Doing string
	// Endpoint names the endpoint in "cannot reach the ENDPOINT URL" ("ELBv2 endpoint").
	Endpoint string
	// Action is the IAM action and what it was on, for Denied
	// ("elasticloadbalancing:ModifyRule on rule R").
	Action string
	// Throttled and Rejected are the whole messages for Throttled and BadCredentials: what an
	// operator should do about those differs between callers, so each words them itself
	// (with Kind.Hint where it applies).
	Throttled, Rejected string
	// Codes words API errors by their code; Otherwise is the message for any other API error.
	Codes     map[string]string
	Otherwise string
}

// messages is how each kind of problem is worded from a Call's words.
var messages = map[Kind]func(c Call, p Problem) string{
	Unreachable: func(c Call, p Problem) string {
		return fmt.Sprintf("%s: cannot reach the %s %s", c.Doing, c.Endpoint, p.Endpoint)
	},
	NoCredentials: func(c Call, p Problem) string {
		return fmt.Sprintf("%s: no usable AWS credentials (%s)", c.Doing, p.Kind.Hint())
	},
	NotAPIError: func(c Call, _ Problem) string { return c.Doing },
	Denied: func(c Call, p Problem) string {
		return fmt.Sprintf("not allowed to call %s (%s)", c.Action, p.Kind.Hint())
	},
	Throttled:      func(c Call, _ Problem) string { return c.Throttled },
	BadCredentials: func(c Call, _ Problem) string { return c.Rejected },
	Other: func(c Call, p Problem) string {
		if m, ok := c.Codes[p.Code]; ok {
			return m
		}
		return c.Otherwise
	},
}

// Explain turns an SDK error from the call c into one line, "MESSAGE: CAUSE", worded for the
// kind of problem it is.
func Explain(err error, c Call) error {
	p := Classify(err)
	return fmt.Errorf("%s: %w", messages[p.Kind](c, p), p.Err)
}
