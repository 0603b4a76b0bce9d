package registry

import (
	"context"
	"database/sql"
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
	versions := map[string][]*modelVersion{}
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
		args := append(append([]any{}, chunk...), stageDeleted)
		return tx.Each(ctx, "SELECT "+versionCols+" FROM model_versions WHERE workspace = 'default' AND name"+in+
			" AND current_stage <> ? ORDER BY name, version", args, func(r *sql.Rows) error {
			v, err := scanVersion(r)
			if err == nil {
				versions[v.Name] = append(versions[v.Name], v)
			}
			return err
		})
	})
	if err != nil {
		return err
	}
	var latest []*modelVersion
	for _, m := range ms {
		latest = append(latest, pickLatest(versions[m.Name], nil)...)
	}
	if err := fillVersions(ctx, tx, latest); err != nil {
		return err
	}
	for _, m := range ms {
		for _, v := range pickLatest(versions[m.Name], nil) {
			m.LatestVersions = append(m.LatestVersions, *v)
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
	k := tx.Dialect().Quote("key")
	return eachChunk(distinctNames(names), func(chunk []any) error {
		in := " IN (" + metadata.Placeholders(len(chunk)) + ")"
		err := tx.Each(ctx, "SELECT name, version, "+k+", value FROM model_version_tags WHERE workspace = 'default' AND name"+in+" ORDER BY name, version, "+k,
			chunk, func(r *sql.Rows) error {
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
