package tracking

import (
	"io"
	"log/slog"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/routes"
)

// mountAPI serves api's routes on app the way the server does, through the
// route table (no static prefix).
func mountAPI(app *fiber.App, api *API) {
	routes.All.Mount(app, app, api.Handlers(), nil)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
