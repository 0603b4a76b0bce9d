package tracking

import (
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/wire"
)

// send writes a handler result: err as an MLflow error (logged when it is
// a server fault), else body as JSON.
func (a *API) send(c *fiber.Ctx, body any, err error) error {
	if err != nil {
		we := metadata.WireError(err)
		if we.Code.Status() >= 500 {
			a.log.Error("tracking request failed", "method", c.Method(), "path", c.Path(), "code", we.Code, "err", we)
		}
		return wire.Send(c, we)
	}
	return c.JSON(body)
}

func fieldf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
