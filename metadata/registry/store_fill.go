package registry

import (
	"context"
	"database/sql"
	"sort"
	"strconv"

	"github.com/ferryml/ferry/metadata"
)

// Batch loading of what a page of models or versions carries: a fixed
// number of queries per fillChunk entities instead of several per entity.

// fillChunk bounds the names bound into one IN list.
const fillChunk = 500

// distinctNames returns the distinct names, in order.
func distinctNames(names []string) []any {
	seen := map[string]bool{}
	var out []any
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// eachChunk runs fn on the names in slices of at most fillChunk.
func eachChunk(names []any, fn func(chunk []any) error) error {
	for len(names) > 0 {
		n := min(len(names), fillChunk)
		if err := fn(names[:n]); err != nil {
			return err
		}
		names = names[n:]
	}
	return nil
}

// pickLatest is get_latest_versions over one model's live versions in
// ascending order: the highest per stage, in the order the stages first
// appear, filtered by stages (all when empty).
func pickLatest(asc []*modelVersion, stages []string) []*modelVersion {
	var order []string
	best := map[string]*modelVersion{}
	for _, v := range asc {
		if _, seen := best[v.CurrentStage]; !seen {
			order = append(order, v.CurrentStage)
		}
		best[v.CurrentStage] = v
	}
	want := map[string]bool{}
	for _, s := range stages {
		want[s] = true
	}
	var out []*modelVersion
	for _, st := range order {
		if len(want) == 0 || want[st] {
			out = append(out, best[st])
		}
	}
	return out
}

// fillModels loads tags, aliases and latest versions (with their tags and
// aliases) of models.
func fillModels(ctx context.Context, tx *metadata.Tx, ms []*registeredModel) error {
	if len(ms) == 0 {
		return nil
	}
	byName := map[string]*registeredModel{}
	names := make([]string, len(ms))
	for i, m := range ms {
		byName[m.Name], names[i] = m, m.Name
	}
	k := tx.Dialect().Quote("key")
	latest := map[*registeredModel][]*modelVersion{}
	err := eachChunk(distinctNames(names), func(chunk []any) error {
		in := " IN (" + metadata.Placeholders(len(chunk)) + ")"
		err := tx.Each(ctx, "SELECT name, "+k+", value FROM registered_model_tags WHERE workspace = 'default' AND name"+in+" ORDER BY name, "+k,
			chunk, func(r *sql.Rows) error {
				var name string
				var kv keyValue
				var v sql.NullString
				if err := r.Scan(&name, &kv.Key, &v); err != nil {
					return err
				}
				if m := byName[name]; m != nil {
					kv.Value = v.String
					m.Tags = append(m.Tags, kv)
				}
				return nil
			})
		if err != nil {
			return err
		}
		err = tx.Each(ctx, "SELECT name, alias, version FROM registered_model_aliases WHERE workspace = 'default' AND name"+in+" ORDER BY name, alias",
			chunk, func(r *sql.Rows) error {
				var name, al string
				var v int64
				if err := r.Scan(&name, &al, &v); err != nil {
					return err
				}
				if m := byName[name]; m != nil {
					m.Aliases = append(m.Aliases, modelAlias{Alias: al, Version: strconv.FormatInt(v, 10)})
				}
				return nil
			})
		if err != nil {
			return err
		}
		return latestOfChunk(ctx, tx, chunk, func(v *modelVersion) {
			if m := byName[v.Name]; m != nil {
				latest[m] = append(latest[m], v)
			}
		})
	})
	if err != nil {
		return err
	}
	var all []*modelVersion
	for _, m := range ms {
		all = append(all, latest[m]...)
	}
	if err := fillVersions(ctx, tx, all); err != nil {
		return err
	}
	for _, m := range ms {
		for _, v := range latest[m] {
			m.LatestVersions = append(m.LatestVersions, *v)
		}
	}
	return nil
}

// latestOfChunk is pickLatest for the models named in chunk, computed in
// the database: per model and stage the first and last live version
// (one aggregate row each), then the rows of the last ones. It hands
// each model's latest versions to add in pickLatest's order (stages by
// their first version). Reading every version instead cost 10 rows per
// model on a 10-version registry, most of a search's time.
func latestOfChunk(ctx context.Context, tx *metadata.Tx, chunk []any, add func(*modelVersion)) error {
	type stageSpan struct {
		stage         string
		first, latest int64
	}
	spans := map[string][]stageSpan{}
	wanted := map[string]map[int64]bool{}
	var versionArgs []any
	seenVersion := map[int64]bool{}
	args := append(append([]any{}, chunk...), stageDeleted)
	err := tx.Each(ctx, "SELECT name, current_stage, MIN(version), MAX(version) FROM model_versions WHERE workspace = 'default' AND name IN ("+
		metadata.Placeholders(len(chunk))+") AND current_stage <> ? GROUP BY name, current_stage", args, func(r *sql.Rows) error {
		var name string
		var sp stageSpan
		var stage sql.NullString
		if err := r.Scan(&name, &stage, &sp.first, &sp.latest); err != nil {
			return err
		}
		sp.stage = stage.String
		spans[name] = append(spans[name], sp)
		if wanted[name] == nil {
			wanted[name] = map[int64]bool{}
		}
		wanted[name][sp.latest] = true
		if !seenVersion[sp.latest] {
			seenVersion[sp.latest] = true
			versionArgs = append(versionArgs, sp.latest)
		}
		return nil
	})
	if err != nil || len(versionArgs) == 0 {
		return err
	}
	// name IN (...) AND version IN (...) is a superset of the wanted
	// pairs (portable, unlike row-value IN); the loop keeps the pairs.
	rows := map[string]map[int64]*modelVersion{}
	args = append(append([]any{}, chunk...), versionArgs...)
	err = tx.Each(ctx, "SELECT "+versionCols+" FROM model_versions WHERE workspace = 'default' AND name IN ("+metadata.Placeholders(len(chunk))+
		") AND version IN ("+metadata.Placeholders(len(versionArgs))+")", args, func(r *sql.Rows) error {
		v, err := scanVersion(r)
		if err != nil {
			return err
		}
		n, _ := strconv.ParseInt(v.Version, 10, 64)
		if wanted[v.Name][n] {
			if rows[v.Name] == nil {
				rows[v.Name] = map[int64]*modelVersion{}
			}
			rows[v.Name][n] = v
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, name := range chunk {
		n := name.(string)
		sps := spans[n]
		sort.Slice(sps, func(i, j int) bool { return sps[i].first < sps[j].first })
		for _, sp := range sps {
			if v := rows[n][sp.latest]; v != nil {
				add(v)
			}
		}
	}
	return nil
}

// fillVersions loads tags and aliases of versions.
func fillVersions(ctx context.Context, tx *metadata.Tx, vs []*modelVersion) error {
	if len(vs) == 0 {
		return nil
	}
	type key struct {
		name    string
		version int64
	}
	byKey := map[key]*modelVersion{}
	names := make([]string, len(vs))
	for i, v := range vs {
		n, _ := strconv.ParseInt(v.Version, 10, 64)
		byKey[key{v.Name, n}], names[i] = v, v.Name
	}
	var nums []any
	seen := map[int64]bool{}
	for k := range byKey {
		if !seen[k.version] {
			seen[k.version] = true
			nums = append(nums, k.version)
		}
	}
	k := tx.Dialect().Quote("key")
	return eachChunk(distinctNames(names), func(chunk []any) error {
		in := " IN (" + metadata.Placeholders(len(chunk)) + ")"
		// The version list narrows the read to (about) the wanted
		// versions' tags; byKey drops the other pairs.
		args := append(append([]any{}, chunk...), nums...)
		err := tx.Each(ctx, "SELECT name, version, "+k+", value FROM model_version_tags WHERE workspace = 'default' AND name"+in+
			" AND version IN ("+metadata.Placeholders(len(nums))+") ORDER BY name, version, "+k,
			args, func(r *sql.Rows) error {
				var kk key
				var kv keyValue
				var val sql.NullString
				if err := r.Scan(&kk.name, &kk.version, &kv.Key, &val); err != nil {
					return err
				}
				if v := byKey[kk]; v != nil {
					kv.Value = val.String
					v.Tags = append(v.Tags, kv)
				}
				return nil
			})
		if err != nil {
			return err
		}
		return tx.Each(ctx, "SELECT name, version, alias FROM registered_model_aliases WHERE workspace = 'default' AND name"+in+" ORDER BY name, version, alias",
			chunk, func(r *sql.Rows) error {
				var kk key
				var al string
				if err := r.Scan(&kk.name, &kk.version, &al); err != nil {
					return err
				}
				if v := byKey[kk]; v != nil {
					v.Aliases = append(v.Aliases, al)
				}
				return nil
			})
	})
}
