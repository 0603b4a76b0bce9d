package metadata

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ferryml/ferry/metadata/internal/testdb"
	"github.com/ferryml/ferry/metadata/schema"
)

// TestExactEq: ExactEq matches byte for byte on every dialect (MySQL's
// default collation would match other case and trailing spaces) and, on
// MySQL, still finds rows through the column's index instead of scanning
// the table.
func TestExactEq(t *testing.T) {
	t.Parallel()
	names := []string{"trail", "trail ", "Trail", "TRAIL", "Straße", "strasse"}
	for _, b := range testdb.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db, err := Open(ctx, b.URI, quiet)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			table := fmt.Sprintf("ferry_exacteq_%s", strings.ToLower(b.Name))
			err = db.Write(ctx, func(tx *Tx) error {
				if _, err := tx.Exec(ctx, "CREATE TABLE "+table+" (name VARCHAR(256) NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (name, n))"); err != nil {
					return err
				}
				for i, name := range names {
					if _, err := tx.Exec(ctx, "INSERT INTO "+table+" (name, n) VALUES (?, ?)", name, i); err != nil {
						return err
					}
				}
				// Enough rows that a table scan shows in the plan.
				for i := range 2000 {
					if _, err := tx.Exec(ctx, "INSERT INTO "+table+" (name, n) VALUES (?, ?)", fmt.Sprintf("filler-%04d", i), i); err != nil {
						return err
					}
				}
				return nil
			})
			t.Cleanup(func() {
				_ = db.Write(context.Background(), func(tx *Tx) error {
					_, err := tx.Exec(context.Background(), "DROP TABLE "+table)
					return err
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			where := ExactEq(db.Dialect(), "name")
			for i, name := range names {
				var got []int
				err := db.Read(ctx, func(tx *Tx) error {
					return tx.Each(ctx, "SELECT n FROM "+table+" WHERE "+where, []any{name}, func(r *sql.Rows) error {
						var n int
						err := r.Scan(&n)
						got = append(got, n)
						return err
					})
				})
				if err != nil || !slices.Equal(got, []int{i}) {
					t.Errorf("%s for %q found rows %v (%v); want only [%d]", where, name, got, err, i)
				}
			}
			if db.Dialect() != schema.MySQL {
				return
			}
			if _, err := db.writer.ExecContext(ctx, "ANALYZE TABLE "+table); err != nil {
				t.Fatal(err)
			}
			var access string
			err = db.Read(ctx, func(tx *Tx) error {
				return tx.Each(ctx, "EXPLAIN SELECT n FROM "+table+" WHERE "+where, []any{"trail"}, func(r *sql.Rows) error {
					cols, _ := r.Columns()
					vals := make([]sql.NullString, len(cols))
					ptrs := make([]any, len(cols))
					for i := range vals {
						ptrs[i] = &vals[i]
					}
					if err := r.Scan(ptrs...); err != nil {
						return err
					}
					access = vals[slices.Index(cols, "type")].String
					return nil
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			if access != "ref" && access != "range" && access != "const" && access != "eq_ref" {
				t.Errorf("MySQL plans %q with access type %q; want an index lookup (ref/range), not a scan", where, access)
			}
		})
	}
}
