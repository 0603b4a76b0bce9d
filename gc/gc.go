// Package gc is `ferry gc`: it removes what nothing else will. Two jobs,
// both safe to run from any replica, an operator's shell or cron, several
// at once:
//
//  1. The artifacts destination's stale uploads, through the driver's
//     optional stores.StaleUploadSweeper: S3 and GCS multipart uploads
//     under Ferry's prefix never completed nor aborted (a crash, a
//     presigned upload abandoned by its client), Azure blocks staged and
//     never committed, the local, SFTP and FTP stores' temporary files.
//  2. Upstream (3.11) `mlflow gc`: runs, logged models and experiments
//     in the `deleted` lifecycle stage, permanently, with their
//     artifacts, and on request finished job records
//     (tracking.API.GarbageCollect).
//
// Concurrency: no lock is taken; every step is idempotent instead (an
// upload or row another collection removed first is skipped, deleting
// missing artifacts succeeds, row deletes only touch rows still marked
// deleted), so two collections never fail each other nor remove anything
// twice, and a collection never waits behind a long one.
package gc

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/tracking"
	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/wire"
)

// DefaultUploadMaxAge is how old an upload must be before the sweep
// removes it when --older-than is not given: far beyond any live upload
// (presigned part URLs live an hour).
const DefaultUploadMaxAge = 24 * time.Hour

// Options is what `ferry gc` was asked to do.
type Options struct {
	// BackendStoreURI is the tracking database; "" skips job 2.
	BackendStoreURI string
	// ArtifactsDestination is the store of proxied artifacts ("" skips
	// job 1; proxied run roots then cannot be deleted).
	ArtifactsDestination string
	// OlderThan applies to both jobs (0 with OlderThanText "": not given,
	// so uploads use DefaultUploadMaxAge and runs have no age limit, as
	// upstream).
	OlderThan     time.Duration
	OlderThanText string
	// RunIDs, ExperimentIDs and LoggedModelIDs narrow job 2 as
	// upstream's options.
	RunIDs, ExperimentIDs, LoggedModelIDs []string
	// Jobs and JobIDs turn on the clean-up of finished job records, as
	// upstream's --jobs and --job-ids.
	Jobs   bool
	JobIDs []string
	// Workspace and AllWorkspaces are upstream's workspace selection;
	// Ferry has no workspace mode, so either makes Run fail before doing
	// anything, with upstream's error for a store without workspaces.
	Workspace     string
	AllWorkspaces bool
	// Out receives upstream's one line per purged run, logged model,
	// experiment or job, and a summary.
	Out io.Writer
	Log *slog.Logger
}

// Run does both jobs: first the upload sweep, then the purge. Either
// failing fails the whole, after the other has still been tried. A
// workspace selection fails it before either starts.
func Run(ctx context.Context, opener *stores.Opener, o Options) error {
	if o.Workspace != "" || o.AllWorkspaces {
		return wire.Errorf(wire.InvalidParameterValue,
			"Workspace selection flags are only supported when the tracking store supports workspaces.")
	}
	var dest *stores.Instrumented
	if o.ArtifactsDestination != "" {
		s, err := opener.Open(ctx, o.ArtifactsDestination)
		if err != nil {
			return fmt.Errorf("artifacts destination %q: %w", stores.RedactURI(o.ArtifactsDestination), err)
		}
		dest = s
	}
	var sweepErr error
	if dest != nil {
		age := o.OlderThan
		if o.OlderThanText == "" {
			age = DefaultUploadMaxAge
		}
		n, err := SweepUploads(ctx, dest, age)
		if err != nil {
			sweepErr = fmt.Errorf("stale uploads in %s: %w", stores.RedactURI(o.ArtifactsDestination), err)
		}
		if n >= 0 {
			fmt.Fprintf(o.Out, "Removed %d stale upload(s) older than %s from the artifacts destination.\n", n, age)
		}
	}
	if o.BackendStoreURI == "" {
		return sweepErr
	}
	db, err := metadata.Open(ctx, o.BackendStoreURI, o.Log)
	if err != nil {
		return joinErr(sweepErr, fmt.Errorf("backend store %s: %w", stores.RedactURI(o.BackendStoreURI), err))
	}
	defer db.Close()
	api := tracking.NewAPI(db, tracking.APIConfig{
		ServeArtifacts: dest != nil,
		Artifacts:      dest,
		Log:            o.Log,
		OpenStore: func(ctx context.Context, uri string) (stores.Store, func(), error) {
			return opener.Acquire(ctx, uri)
		},
	})
	res, err := api.GarbageCollect(ctx, tracking.GCOptions{
		OlderThan: o.OlderThan, OlderThanText: o.OlderThanText,
		RunIDs: o.RunIDs, ExperimentIDs: o.ExperimentIDs, LoggedModelIDs: o.LoggedModelIDs,
		Jobs: o.Jobs, JobIDs: o.JobIDs,
		Report: func(line string) { fmt.Fprintln(o.Out, line) },
	})
	fmt.Fprintf(o.Out, "Permanently deleted %d run(s), %d logged model(s), %d experiment(s) and %d job(s).\n",
		res.Runs, res.LoggedModels, res.Experiments, res.Jobs)
	return joinErr(sweepErr, err)
}

// SweepUploads runs the store's StaleUploadSweeper, if it has one, for
// uploads older than maxAge; n is -1 when the store has none (nothing to
// sweep, or a backend that cannot list its leftovers, see NOTES.md).
func SweepUploads(ctx context.Context, s stores.Store, maxAge time.Duration) (n int, err error) {
	sw, ok := stores.As[stores.StaleUploadSweeper](s)
	if !ok {
		return -1, nil
	}
	return sw.SweepStaleUploads(ctx, maxAge)
}

func joinErr(a, b error) error {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return fmt.Errorf("%w; %w", a, b)
}

// olderThanRe is upstream's time-spec grammar (mlflow.utils.time
// get_time_delta... in `mlflow gc`): optional days, hours, minutes,
// seconds parts in that order, each digits and dots.
var olderThanRe = regexp.MustCompile(`^(?:([.\d]+?)d)?(?:([.\d]+?)h)?(?:([.\d]+?)m)?(?:([.\d]+?)s)?$`)

// ParseOlderThan parses --older-than as upstream does ("30d", "1d2h3m4s",
// "1.5h"); anything else is upstream's INVALID_PARAMETER_VALUE error.
func ParseOlderThan(s string) (time.Duration, error) {
	bad := wire.Errorf(wire.InvalidParameterValue,
		"Could not parse any time information from '%s'. Examples of valid strings: '8h', '2d8h5m20s', '2m4s'", s)
	m := olderThanRe.FindStringSubmatch(s)
	if m == nil {
		return 0, bad
	}
	units := []time.Duration{24 * time.Hour, time.Hour, time.Minute, time.Second}
	var total float64
	for i, part := range m[1:] {
		if part == "" {
			continue
		}
		f, err := strconv.ParseFloat(part, 64)
		if err != nil {
			return 0, bad
		}
		total += f * float64(units[i])
	}
	if total > float64(1<<62) {
		return 0, bad
	}
	return time.Duration(total), nil
}

// SplitIDs splits a comma-separated id list as upstream's
// `run_ids.split(",")`, dropping surrounding blanks.
func SplitIDs(s string) []string {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}
