package ftp

// DialCount is how many control connections s has made.
func DialCount(s *Store) int64 { return s.dials.Load() }
