package wire

import (
	"bufio"
	"net"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Lingering close (as nginx's lingering_close and Apache's lingering
// close): a request refused before its body was read still has the body
// coming. fasthttp discards at most 256 KiB of it after the answer and
// otherwise closes the connection with data unread, and the kernel then
// resets it; a client that sends its whole body before reading the answer
// sees "connection reset" instead of the error. Lingering sends the answer
// with "Connection: close", half-closes the connection and discards what
// still arrives, within bounds, so the answer is read.
const (
	// lingerBytes is the most read and discarded per connection: a body
	// larger than that by more than the socket buffers still gets a reset.
	// Hostile bodies of 100 MB are not read whole.
	lingerBytes = 64 << 20
	// lingerTime bounds how long a connection lingers in all, lingerIdle
	// how long it waits for each next piece (nginx: lingering_time 30 s,
	// lingering_timeout 5 s).
	lingerTime = 10 * time.Second
	lingerIdle = 2 * time.Second
	// lingerConns bounds the connections lingering at once; past it a
	// connection gets what fasthttp itself would discard (shortBytes,
	// within shortTime) and is closed.
	lingerConns = 32
	shortBytes  = 256 << 10
	shortTime   = time.Second
)

var lingerSlots = make(chan struct{}, lingerConns)

// LingerAfterAnswer makes Ferry, instead of fasthttp, write the answer to
// c once the handler has returned, marked "Connection: close", and then
// linger on the connection as described above before closing it. For a
// request answered before its body was read; it ends the connection's use
// for requests. Calling it twice is harmless. On a connection that cannot
// be half-closed it only marks the answer "Connection: close".
func LingerAfterAnswer(c *fiber.Ctx) {
	fctx := c.Context()
	half, ok := fctx.Conn().(interface{ CloseWrite() error })
	if !ok {
		// Not a TCP (or TLS) connection: fiber's app.Test, whose caller
		// reads the answer as soon as the handler returns, before a hijack
		// handler could write it. Close as fasthttp would.
		fctx.SetConnectionClose()
		return
	}
	fctx.HijackSetNoResponse(true)
	// fasthttp releases fctx only after this handler returns.
	fctx.Hijack(func(conn net.Conn) {
		defer conn.Close()
		fctx.Response.Header.SetConnectionClose()
		_ = conn.SetWriteDeadline(time.Now().Add(lingerTime))
		bw := bufio.NewWriter(conn)
		if err := fctx.Response.Write(bw); err != nil {
			return
		}
		if err := bw.Flush(); err != nil {
			return
		}
		limit, total := int64(shortBytes), shortTime
		select {
		case lingerSlots <- struct{}{}:
			defer func() { <-lingerSlots }()
			limit, total = lingerBytes, lingerTime
		default:
		}
		// The FIN after the answer tells the client nothing more comes.
		_ = half.CloseWrite()
		end := time.Now().Add(total)
		buf := make([]byte, 32<<10)
		for limit > 0 {
			deadline := time.Now().Add(lingerIdle)
			if deadline.After(end) {
				deadline = end
			}
			if err := conn.SetReadDeadline(deadline); err != nil {
				return
			}
			n, err := conn.Read(buf[:min(int64(len(buf)), limit)])
			limit -= int64(n)
			if err != nil {
				return
			}
		}
	})
}
