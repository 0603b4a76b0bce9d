package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/wire"
)

// maxURIHops bounds how many models:/ URIs a download follows (a version
// whose source is models:/ of a version whose source is models:/ …), so a
// cycle written into the database cannot loop.
const maxURIHops = 8

// downloadRoot is where /model-versions/get-artifact reads a version's
// files: the artifact root URI (for serve.Roots.Locate) and a clean key
// prefix below it ("" for the root itself).
type downloadRoot struct {
	root, prefix string
}

// versionDownloadRoot resolves a live version's download URI
// (storage_location, else source; spec tracking-api.md §5.8) to an
// artifact root, as upstream's handler does through get_artifact_repository:
// runs:/<run>/<path> is the run's artifact root and <path> below it,
// models:/… is followed (resolveModelsURI), anything else is the root.
//
// A root taken verbatim from a version row (user input at create time) is
// checked again before anything is read, with create's rules, so a row
// written directly into the database (or by an older server) cannot make
// Ferry serve another place: a local root must lie inside the local
// artifact directory of the version's run or of a logged model of that
// run (symlinks resolved); any other root must carry no ".." segment, NUL
// or path that is not its own resolved form. Roots read from the runs and
// logged_models tables are the server's own and are not re-checked; the
// store keeps every key below them.
func (a *API) versionDownloadRoot(ctx context.Context, name string, version int64) (downloadRoot, error) {
	var out downloadRoot
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		var storage, src, run sql.NullString
		err := tx.QueryRow(ctx, "SELECT storage_location, source, run_id FROM model_versions WHERE workspace = 'default' AND "+nameEq(tx.Dialect())+
			" AND version = ? AND current_stage <> ?", name, version, stageDeleted).Scan(&storage, &src, &run)
		if errors.Is(err, sql.ErrNoRows) {
			return versionNotFound(name, version)
		}
		if err != nil {
			return err
		}
		loc := src.String
		if storage.String != "" {
			loc = storage.String
		}
		for hop := 0; ; hop++ {
			if hop == maxURIHops {
				return reasonError(fmt.Sprintf("The download URI of model version (name=%s, version=%d) follows more than %d models:/ URIs.", name, version, maxURIHops))
			}
			switch uriScheme(loc) {
			case "models":
				t, err := resolveModelsURI(ctx, tx, loc)
				if err != nil {
					return err
				}
				if t.loggedModel {
					out.root = t.location
					return nil
				}
				loc = t.location
				continue
			case "runs":
				root, prefix, err := runsURIRoot(ctx, tx, loc)
				out = downloadRoot{root: root, prefix: prefix}
				return err
			}
			out.root = loc
			return checkDownloadRoot(ctx, tx, loc, run.String)
		}
	})
	return out, err
}

// runsURIRoot is upstream's RunsArtifactRepository.parse_runs_uri and
// get_underlying_uri: runs:/<run_id>[/<path>] is the run's artifact root
// and the clean key <path> below it.
func runsURIRoot(ctx context.Context, tx *metadata.Tx, uri string) (root, prefix string, err error) {
	p := urlPath(uri)
	if !strings.HasPrefix(p, "/") || len(p) <= 1 {
		return "", "", reasonError(fmt.Sprintf("Not a proper runs:/ URI: %s. Runs URIs must be of the form 'runs:/<run_id>/run-relative/path/to/artifact'", uri))
	}
	runID, rel, _ := strings.Cut(p[1:], "/")
	if runID == "" {
		return "", "", reasonError(fmt.Sprintf("Not a proper runs:/ URI: %s. Runs URIs must be of the form 'runs:/<run_id>/run-relative/path/to/artifact'", uri))
	}
	if prefix, err = stores.CleanKey(rel); err != nil {
		return "", "", wire.InvalidPath(err)
	}
	var artifactURI sql.NullString
	err = tx.QueryRow(ctx, "SELECT artifact_uri FROM runs WHERE run_uuid = ?", runID).Scan(&artifactURI)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", wire.Errorf(wire.ResourceDoesNotExist, "Run with id=%s not found", runID)
	}
	return artifactURI.String, prefix, err
}

// checkDownloadRoot applies create's source rules to a root read from a
// version row (see versionDownloadRoot). A local root must lie inside
// the local artifact location of an experiment (where every run's and
// logged model's artifact directory is): create's narrower rule (inside
// the request's run) cannot be applied again, since a models:/ source's
// stored location belongs to whatever version the URI named then. runID
// (the version's run) only names the owner in the error.
func checkDownloadRoot(ctx context.Context, tx *metadata.Tx, loc, runID string) error {
	local, werr := isLocalURI(loc)
	if werr != nil {
		return werr
	}
	if !local {
		if werr := checkNonLocalSource(loc); werr != nil {
			return werr
		}
		return nil
	}
	resolved := resolvePath(localPath(loc))
	allowed := false
	err := tx.Each(ctx, "SELECT artifact_location FROM experiments", nil, func(rows *sql.Rows) error {
		var r sql.NullString
		if err := rows.Scan(&r); err != nil {
			return err
		}
		if rootLocal, _ := isLocalURI(r.String); r.String != "" && rootLocal && within(resolvePath(localPath(r.String)), resolved) {
			allowed = true
		}
		return nil
	})
	if err != nil || allowed {
		return err
	}
	return checkSource(loc, sourceOwner{kind: "run_id", id: runID})
}
