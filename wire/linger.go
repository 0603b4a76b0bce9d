package wire

import (
	"io"
	"net"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Lingering close (as nginx's lingering_close and Apache's lingering
// close): a request refused before its body was read still has the body
// coming. fasthttp discards at most 256 KiB of it after the answer and
// otherwise closes the connection with data unread, and the kernel then
// resets it; a client that sends its whole body before reading the answer
// (Python's requests, the MLflow client) sees "connection reset" instead of
// the error. Lingering sends the answer, half-closes the connection and
// discards what still arrives, within bounds, so the answer is read.
const (
	// lingerBytes is the most read and discarded per connection: a body
	// larger than that by more than the socket buffers still gets a reset.
	// Hostile bodies of 100 MB are not read whole.
	lingerBytes = 64 << 20
	// lingerTime bounds how long a connection lingers in all.
	lingerTime = 10 * time.Second
	// lingerConns bounds the connections lingering at once; past it a
	// refused body gets fasthttp's own policy.
	lingerConns = 32
)

var lingerSlots = make(chan struct{}, lingerConns)

// LingerAfterAnswer makes the connection of c linger after the answer to
// c (see lingerBytes). For a request whose unread body is too big for
// fasthttp's own discard; it ends the connection's use for requests. The
// answer must not ask for "Connection: close": fasthttp then closes the
// connection instead (today's behaviour). Calling it twice is harmless.
func LingerAfterAnswer(c *fiber.Ctx) {
	raw := c.Context().Conn()
	c.Context().Hijack(func(conn net.Conn) {
		select {
		case lingerSlots <- struct{}{}:
			defer func() { <-lingerSlots }()
		default:
			return // too many lingering: close now, as fasthttp would
		}
		// The answer is out (fasthttp flushed it before the hijack); the
		// FIN after it tells the client nothing more will come.
		if hc, ok := raw.(interface{ CloseWrite() error }); ok {
			_ = hc.CloseWrite()
		}
		_ = conn.SetReadDeadline(time.Now().Add(lingerTime))
		_, _ = io.CopyN(io.Discard, conn, lingerBytes)
	})
}
