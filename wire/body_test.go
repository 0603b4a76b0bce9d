package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

// TestStallDeadlineWithDataWaiting: a read deadline that passes while the
// process is off the CPU, with the client's bytes already in the socket,
// is not a stall; the body of known length is read whole. (The deadline is
// moved into the past by hand here, which is what a starved process sees.)
// A client that really sends nothing more is still cut as stalled.
func TestStallDeadlineWithDataWaiting(t *testing.T) {
	limits := &Limits{StallTimeout: 2 * time.Second}
	app := fiber.New(fiber.Config{StreamRequestBody: true, DisableStartupMessage: true})
	app.Put("/", func(c *fiber.Ctx) error {
		SetLimits(c, limits)
		body := RequestBody(c)
		first := make([]byte, 10)
		if _, err := io.ReadFull(body, first); err != nil {
			return c.Status(500).SendString("first read: " + err.Error())
		}
		// Wait until the rest has surely arrived (or surely will not),
		// then let the deadline pass without this goroutine reading.
		time.Sleep(200 * time.Millisecond)
		_ = c.Context().SetReadDeadline(time.Now().Add(-time.Second))
		rest, err := io.ReadAll(body)
		var be *BodyError
		if err != nil && !(errors.As(err, &be) && be.Stalled) {
			return c.Status(500).SendString("rest: " + err.Error())
		}
		if err != nil {
			return c.Status(400).SendString(fmt.Sprintf("stalled after %d bytes", 10+len(rest)))
		}
		return c.SendString(fmt.Sprintf("read %d bytes", 10+len(rest)))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })

	exchange := func(length int, sent []byte) string {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		fmt.Fprintf(conn, "PUT / HTTP/1.1\r\nHost: ferry\r\nContent-Length: %d\r\n\r\n", length)
		if _, err := conn.Write(sent); err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(conn)
		return string(answer)
	}

	whole := bytes.Repeat([]byte("z"), 100<<10)
	if got := exchange(len(whole), whole); !strings.Contains(got, fmt.Sprintf("read %d bytes", len(whole))) {
		t.Errorf("a body whose bytes waited in the socket when the deadline passed: %q; want it read whole", got)
	}
	// Half the body, then nothing: the recheck finds no byte.
	start := time.Now()
	if got := exchange(len(whole), whole[:50<<10]); !strings.Contains(got, "stalled after") {
		t.Errorf("a body that stopped half-way: %q; want it cut as stalled", got)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the stalled body was cut after %s; the deadline had passed already", took)
	}
}
