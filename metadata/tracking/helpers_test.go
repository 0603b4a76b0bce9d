package tracking

import "github.com/ferryml/ferry/metadata/internal/domaintest"

var quiet = domaintest.Quiet
