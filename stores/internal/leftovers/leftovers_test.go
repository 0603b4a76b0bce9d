package leftovers

import (
	"errors"
	"reflect"
	"testing"
)

var errLost = errors.New("connection lost")

func isLost(err error) bool { return errors.Is(err, errLost) }

// TestEndKeepsDirectoriesOtherUploadsUse: a failed upload offers only the
// directories it made that no other upload in progress needs.
func TestEndKeepsDirectoriesOtherUploadsUse(t *testing.T) {
	var tr Tracker
	tr.Begin("a/b/c")
	tr.Begin("a/b")
	// The first upload made a/b/c, then a/b (deepest first) and failed.
	got := tr.End("a/b/c", []string{"a/b/c", "a/b"}, false)
	if want := []string{"a/b/c"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("End = %v, want %v (a/b is used by the other upload)", got, want)
	}
	if got := tr.End("a/b", []string{"a/b"}, true); got != nil {
		t.Fatalf("End of a committed upload = %v, want nothing to remove", got)
	}
	if len(tr.uploading) != 0 {
		t.Fatalf("uploading not emptied: %v", tr.uploading)
	}
}

// TestRemoveDirsStopsAtLostConnection returns what is left for later.
func TestRemoveDirsStopsAtLostConnection(t *testing.T) {
	var tr Tracker
	var removed []string
	rest, err := tr.RemoveDirs([]string{"x/y", "x", "z"}, func(d string) error {
		if d == "x" {
			return errLost
		}
		removed = append(removed, d)
		return nil
	}, isLost)
	if !errors.Is(err, errLost) || !reflect.DeepEqual(rest, []string{"x", "z"}) || !reflect.DeepEqual(removed, []string{"x/y"}) {
		t.Fatalf("RemoveDirs: rest %v err %v removed %v", rest, err, removed)
	}
	// A directory that is not empty (any other error) ends it quietly.
	rest, err = tr.RemoveDirs([]string{"p", "q"}, func(string) error { return errors.New("not empty") }, isLost)
	if rest != nil || err != nil {
		t.Fatalf("not-empty: rest %v err %v, want nothing", rest, err)
	}
}

// TestCleanRemembersWhatALostConnectionLeft and skips busy directories.
func TestCleanRemembersWhatALostConnectionLeft(t *testing.T) {
	var tr Tracker
	tr.Begin("busy")
	tr.Add(Orphan{Key: "t1"}, Orphan{Key: "busy", Dir: true}, Orphan{Key: "t2"}, Orphan{Key: "t3"})
	var seen []string
	tr.Clean(func(o Orphan) error {
		seen = append(seen, o.Key)
		if o.Key == "t2" {
			return errLost
		}
		return nil
	}, isLost)
	if want := []string{"t1", "t2"}; !reflect.DeepEqual(seen, want) {
		t.Fatalf("Clean tried %v, want %v", seen, want)
	}
	if want := []Orphan{{Key: "t2"}, {Key: "t3"}}; !reflect.DeepEqual(tr.orphans, want) {
		t.Fatalf("remembered %v, want %v", tr.orphans, want)
	}
}

// TestAddIsBounded forgets the oldest beyond MaxOrphans.
func TestAddIsBounded(t *testing.T) {
	var tr Tracker
	for i := 0; i < MaxOrphans+5; i++ {
		tr.Add(Orphan{Key: string(rune('a' + i%26))})
	}
	if len(tr.orphans) != MaxOrphans {
		t.Fatalf("%d orphans kept, want %d", len(tr.orphans), MaxOrphans)
	}
}
