// Package split turns a pair of relative traffic weights into the canary's percentage, the
// way every provider reports it.
package split

import (
	"errors"
	"fmt"
)

// Percent is canary's share of canary+stable in whole percent, rounded to nearest.
func Percent(canary, stable int64) (int, error) {
	switch {
	case canary < 0 || stable < 0:
		return 0, fmt.Errorf("negative weight (stable %d, canary %d)", stable, canary)
	case canary+stable == 0:
		return 0, errors.New("both weights are 0: the route sends traffic nowhere")
	}
	total := canary + stable
	return int((200*canary + total) / (2 * total)), nil
}
