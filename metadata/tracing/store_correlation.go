package tracing

import (
	"context"
	"math"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/search"
)

// correlationCounts are the four counts of calculate-filter-correlation:
// traces of the experiments matching the base filter (total), and of
// those, the ones matching filter 1, filter 2 and both.
type correlationCounts struct {
	total, filter1, filter2, joint int64
}

// countCorrelation counts in one statement (one scan of the base set):
// COUNT(*) plus a SUM(CASE …) per filter, in one read transaction.
func (a *API) countCorrelation(ctx context.Context, exps []int64, base, f1, f2 []search.Comparison) (correlationCounts, error) {
	var out correlationCounts
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		d := tx.Dialect()
		c1, a1 := search.TracesWhere(d, f1)
		c2, a2 := search.TracesWhere(d, f2)
		w, aw := search.TracesWhere(d, base)
		// The CASE arguments come first in the text, then the WHERE ones.
		q := "SELECT COUNT(*), " +
			"COALESCE(SUM(CASE WHEN " + c1 + " THEN 1 ELSE 0 END), 0), " +
			"COALESCE(SUM(CASE WHEN " + c2 + " THEN 1 ELSE 0 END), 0), " +
			"COALESCE(SUM(CASE WHEN " + c1 + " AND " + c2 + " THEN 1 ELSE 0 END), 0) " +
			"FROM trace_info t WHERE t.experiment_id IN " + placeholders(len(exps)) + " AND " + w
		var args []any
		args = append(args, a1...)
		args = append(args, a2...)
		args = append(args, a1...)
		args = append(args, a2...)
		for _, id := range exps {
			args = append(args, id)
		}
		args = append(args, aw...)
		return tx.QueryRow(ctx, q, args...).Scan(&out.total, &out.filter1, &out.filter2, &out.joint)
	})
	return out, err
}

// placeholders is "(?, ?, …)" for n values, "(NULL)" for none (matches
// nothing).
func placeholders(n int) string {
	if n == 0 {
		return "(NULL)"
	}
	b := make([]byte, 0, 3*n+1)
	b = append(b, '(')
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, '?')
	}
	return string(append(b, ')'))
}

// jeffreysPrior is the additive smoothing upstream applies to every cell
// of the 2×2 table for npmi_smoothed (mlflow.tracing.analysis).
const jeffreysPrior = 0.5

// npmi computes upstream's (unsmoothed, smoothed) normalised pointwise
// mutual information of two filters from their counts:
//   - no population, or a filter with no match: both NaN;
//   - inconsistent counts (a negative cell): both NaN;
//   - filters that never co-occur: unsmoothed -1 (smoothed computed);
//   - otherwise log(n11·N / (n1·n2)) / -log(n11/N), clamped to [-1, 1],
//     and 1 when the two always co-occur (no mass outside n11, judged on
//     the unsmoothed cells for both values).
func npmi(c correlationCounts) (float64, float64) {
	nan := math.NaN()
	if c.total <= 0 || c.filter1 == 0 || c.filter2 == 0 {
		return nan, nan
	}
	n11 := float64(c.joint)
	n10 := float64(c.filter1 - c.joint)
	n01 := float64(c.filter2 - c.joint)
	n00 := float64(c.total - c.filter1 - c.filter2 + c.joint)
	if min(n11, n10, n01, n00) < 0 {
		return nan, nan
	}
	raw := -1.0
	if c.joint != 0 {
		raw = npmiCore(n11, n10, n01, n00, 0)
	}
	return raw, npmiCore(n11, n10, n01, n00, jeffreysPrior)
}

func npmiCore(n11, n10, n01, n00, smooth float64) float64 {
	s11, s10, s01, s00 := n11+smooth, n10+smooth, n01+smooth, n00+smooth
	total := s11 + s10 + s01 + s00
	m1, m2 := s11+s10, s11+s01
	if m1 <= 0 || m2 <= 0 || s11 <= 0 {
		return math.NaN()
	}
	if n10 == 0 && n01 == 0 && n00 == 0 {
		return 1
	}
	pmi := (math.Log(s11) + math.Log(total)) - (math.Log(m1) + math.Log(m2))
	v := pmi / -(math.Log(s11) - math.Log(total))
	return max(-1, min(1, v))
}
