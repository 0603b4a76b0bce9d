package stores

import "io"

// CopyFilled copies r to w through buf, filling buf before each write to
// w: only the last write (or the one before a read error) is shorter
// than buf. io.CopyBuffer writes whatever each Read returned, which for
// a network body or an HDFS block is one packet or one socket read (64 to
// 256 KiB); on the download path each write is a syscall to the client's
// socket, and fewer, larger ones are most of what the hop can save.
//
// It returns the bytes written and the first error: w's, io.ErrShortWrite
// when w wrote less without one, or r's other than io.EOF. The bytes read
// before r's error are written first, so w has every byte r gave.
func CopyFilled(w io.Writer, r io.Reader, buf []byte) (written int64, err error) {
	for {
		n, rerr := 0, error(nil)
		for n < len(buf) && rerr == nil {
			var m int
			m, rerr = r.Read(buf[n:])
			n += m
		}
		if n > 0 {
			m, werr := w.Write(buf[:n])
			written += int64(m)
			if werr != nil {
				return written, werr
			}
			if m < n {
				return written, io.ErrShortWrite
			}
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
	}
}
