package proxyd

import "github.com/perchhq/perch/internal/yamlpos"

// decoder fills a Config from YAML nodes (yamlpos.Decoder, reading ${NAME} in text from the
// environment) and validates it, pointing each problem at where it was written.
type decoder struct{ *yamlpos.Decoder }
