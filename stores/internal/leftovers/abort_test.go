package leftovers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/ferryml/ferry/stores"
)

// TestAbortAll: gone and kept items are no error, a refused one is skipped and
// reported, unavailability stops the sweep.
func TestAbortAll(t *testing.T) {
	refused := errors.New("refused")
	outcome := map[int]error{
		2: fmt.Errorf("upload 2: %w", stores.ErrNotFound),
		4: fmt.Errorf("upload 4: committed meanwhile: %w", ErrKept),
		3: fmt.Errorf("upload 3: %w", refused),
		5: fmt.Errorf("upload 5: %w", refused),
	}
	var logged []int
	abort := func(i int) error { return outcome[i] }
	n, err := AbortAll(context.Background(), []int{1, 2, 3, 4, 5, 6}, abort, func(i int) { logged = append(logged, i) })
	if n != 2 || !errors.Is(err, refused) || err.Error() != "upload 3: refused" || !slices.Equal(logged, []int{1, 6}) {
		t.Fatalf("AbortAll = %d, %v, logged %v; want 2, the first refusal, [1 6]", n, err, logged)
	}

	outcome[4] = fmt.Errorf("upload 4: %w", stores.ErrUnavailable)
	logged = nil
	n, err = AbortAll(context.Background(), []int{1, 2, 3, 4, 5, 6}, abort, func(i int) { logged = append(logged, i) })
	if n != 1 || !errors.Is(err, stores.ErrUnavailable) || !slices.Equal(logged, []int{1}) {
		t.Fatalf("AbortAll with the store down at 4 = %d, %v, logged %v; want it to stop there", n, err, logged)
	}
}
