package wire

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

// zeros is an endless body that counts what was taken from it.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	clear(p)
	z.n += int64(len(p))
	return len(p), nil
}

// TestLingerAfterTooLarge: a client that sends its whole body before
// reading the answer, as Python's requests does, reads the 400 for a JSON
// body over the limit instead of a reset, whether the body announces its
// length or is chunked; and a body far over the lingering bound is not
// read whole.
func TestLingerAfterTooLarge(t *testing.T) {
	const limit = 1 << 20
	app := fiber.New(fiber.Config{StreamRequestBody: true, DisableStartupMessage: true})
	app.Post("/", func(c *fiber.Ctx) error {
		if _, werr := ReadBody(c, limit); werr != nil {
			return Send(c, werr)
		}
		return c.SendString("{}")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })

	// send writes the request and its whole body, then reads the answer.
	send := func(body io.Reader, length int64, extra string) (status int, answer string, err error) {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
		head := "POST / HTTP/1.1\r\nHost: ferry\r\nContent-Type: application/json\r\n" + extra
		if length >= 0 {
			head += fmt.Sprintf("Content-Length: %d\r\n\r\n", length)
		} else {
			head += "Transfer-Encoding: chunked\r\n\r\n"
		}
		if _, err := io.WriteString(conn, head); err != nil {
			return 0, "", err
		}
		var w io.Writer = conn
		var cw io.WriteCloser
		if length < 0 {
			cw = httputil.NewChunkedWriter(conn)
			w = cw
		}
		if _, err := io.Copy(w, body); err != nil {
			return 0, "", fmt.Errorf("sending the body: %w", err)
		}
		if cw != nil {
			if err := cw.Close(); err != nil {
				return 0, "", err
			}
			if _, err := io.WriteString(conn, "\r\n"); err != nil {
				return 0, "", err
			}
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return 0, "", fmt.Errorf("reading the answer: %w", err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if !resp.Close {
			return resp.StatusCode, string(raw), fmt.Errorf("the answer does not say Connection: close")
		}
		return resp.StatusCode, string(raw), nil
	}

	over := int64(limit + 16<<20) // far past what fasthttp discards (256 KiB)
	for round := range 2 {
		for _, chunked := range []bool{false, true} {
			// A request asking for close is lingered on too (fasthttp alone
			// would skip a hijack for it).
			for _, extra := range []string{"", "Connection: close\r\n"} {
				length := over
				if chunked {
					length = -1
				}
				st, answer, err := send(io.LimitReader(&zeros{}, over), length, extra)
				if err != nil || st != 400 || !strings.Contains(answer, "too large") {
					t.Errorf("round %d, chunked %v, %q: %d %q %v; want the 400 read after the whole body", round, chunked, extra, st, answer, err)
				}
			}
		}
	}
	// The lingering ends with the client's side: no slot stays taken.
	for deadline := time.Now().Add(5 * time.Second); len(lingerSlots) > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(lingerSlots); n > 0 {
		t.Errorf("%d lingering slots still taken after the clients closed", n)
	}

	// With every slot taken the answer is still written, marked close.
	// (Whether the short drain matters here depends on the socket buffers:
	// with it cut to 0 this still passed, so it is not proven here.)
	for range lingerConns {
		lingerSlots <- struct{}{}
	}
	st, answer, err := send(io.LimitReader(&zeros{}, limit+100<<10), -1, "")
	if err != nil || st != 400 {
		t.Errorf("slots full, 100 KiB over: %d %q %v; want the 400", st, answer, err)
	}
	for range lingerConns {
		<-lingerSlots
	}

	// 200 MiB announced: the connection is cut after lingerBytes.
	z := &zeros{}
	_, _, err = send(io.LimitReader(z, 200<<20), 200<<20, "")
	if err == nil {
		t.Errorf("a 200 MiB body was taken whole (%d bytes)", z.n)
	}
	if z.n > lingerBytes+32<<20 {
		t.Errorf("%d bytes taken from the client, want about lingerBytes (%d)", z.n, lingerBytes)
	}
	t.Logf("200 MiB body: %d bytes taken, then %v", z.n, err)
}
