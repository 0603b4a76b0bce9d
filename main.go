// Command ferry is a drop-in for `mlflow server`: the mlflow-artifacts
// proxy (streaming, with presigned multipart uploads where the store can)
// and, beside it, the MLflow tracking API. main.go only wires: it parses
// flags, builds the stores and the app, runs, and shuts down gracefully.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/ferryml/ferry/config"
	"github.com/ferryml/ferry/gc"
	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/registry"
	"github.com/ferryml/ferry/metadata/registry/webhook"
	"github.com/ferryml/ferry/metadata/tracing"
	"github.com/ferryml/ferry/metadata/tracing/otlp"
	"github.com/ferryml/ferry/metadata/tracking"
	"github.com/ferryml/ferry/proxy"
	"github.com/ferryml/ferry/routes"
	"github.com/ferryml/ferry/stores"
	_ "github.com/ferryml/ferry/stores/azure" // registers wasbs:// and abfss://
	_ "github.com/ferryml/ferry/stores/ftp"   // registers ftp://
	_ "github.com/ferryml/ferry/stores/gcs"   // registers gs://
	_ "github.com/ferryml/ferry/stores/hdfs"  // registers hdfs:// and viewfs://
	_ "github.com/ferryml/ferry/stores/local" // registers file:// and plain paths
	_ "github.com/ferryml/ferry/stores/s3"    // registers s3://
	_ "github.com/ferryml/ferry/stores/sftp"  // registers sftp://
)

// version is Ferry's own version, set at build time with
// -ldflags "-X main.version=v1.2.3"; otherwise the module's build info.
var version = ""

func ferryVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func main() {
	if err := rootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "ferry:", err)
		os.Exit(1)
	}
}

func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "ferry",
		Short:         "Ferry: an MLflow tracking server and streaming artifact proxy in one Go binary",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serverCommand(), versionCommand(), dbCommand(), routesCommand(), gcCommand())
	return root
}

func dbCommand() *cobra.Command {
	db := &cobra.Command{Use: "db", Short: "Manage the tracking database"}
	db.AddCommand(&cobra.Command{
		Use:   "upgrade URI",
		Short: "Create the MLflow schema in an empty database, or bring one at an older upstream revision to the head Ferry serves",
		Long: "Create the MLflow schema in an empty database, or bring a database at an older MLflow schema " +
			"revision (3.6's bf29a5ff90ea or later) to the head Ferry serves (MLflow 3.11's 7d34483879f0), " +
			"as `mlflow db upgrade URI` does. Take a backup first.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			return metadata.Upgrade(cmd.Context(), args[0], log)
		},
	})
	return db
}

func routesCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "routes",
		Short: "List every route upstream MLflow serves and whether Ferry serves it (served, 501 or 404)",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "AREA\tMETHOD\tPATH\tFERRY")
			for _, rt := range routes.All {
				for _, u := range rt.URLs("") {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", rt.Area, rt.Method, u, rt.Status())
				}
			}
			w.Flush()
		},
	}
}

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print Ferry's version and the MLflow API version it implements",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "ferry %s (MLflow API %s)\n", ferryVersion(), proxy.MLflowVersion)
		},
	}
}

func serverCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the tracking server and artifact proxy (flags and env vars as `mlflow server`)",
		Args:  cobra.NoArgs,
	}
	flags := config.BindFlags(cmd.Flags())
	// mlflow server uses -h for --host, so help gets no shorthand.
	cmd.Flags().Bool("help", false, "help for server")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := flags.Resolve(os.Getenv)
		if err != nil {
			return fmt.Errorf("invalid configuration:\n%w", err)
		}
		return runServer(cmd.Context(), cfg, os.Stderr)
	}
	return cmd
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.Replace(strings.ToLower(cfg.LogLevel), "warning", "warn", 1)))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// runServer serves until SIGTERM/SIGINT, then stops accepting, lets
// in-flight requests and transfers finish for up to cfg.ShutdownTimeout,
// and finally cancels whatever is still running.
func runServer(ctx context.Context, cfg *config.Config, logOut io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	log := newLogger(cfg, logOut)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ferry_build_info",
		Help: "Always 1; labels carry Ferry's version and the MLflow API version it implements.",
	}, []string{"version", "mlflow_version"})
	buildInfo.WithLabelValues(ferryVersion(), proxy.MLflowVersion).Set(1)
	reg.MustRegister(buildInfo)
	storeMetrics := stores.NewMetrics(reg)

	opener := stores.NewOpener(storeMetrics, log)
	defer opener.Close() // runs last, after the server has stopped
	var artifacts *stores.Instrumented
	if cfg.ServeArtifacts {
		s, err := opener.Open(ctx, cfg.ArtifactsDestination)
		if err != nil {
			return fmt.Errorf("artifacts destination %q: %w", stores.RedactURI(cfg.ArtifactsDestination), err)
		}
		artifacts = s
		if need := stores.PutBuffer(s, -1); cfg.TransferMemoryLimit > 0 && need > cfg.TransferMemoryLimit {
			log.Warn("an upload of unknown length needs more part-buffer memory than --max-transfer-memory: such uploads will run one at a time, each waiting for all others",
				"needs_bytes", need, "max_transfer_memory_bytes", cfg.TransferMemoryLimit)
		}
		// The policy runs for the life of the process: its stop is not needed.
		if advice, _, ok := stores.ApplyGCAdvice(s, os.Getenv); ok {
			log.Info("garbage collector tuned for the artifacts destination's driver (GOGC or GOMEMLIMIT override)",
				"heap_target_bytes", advice.HeapTarget, "min_gogc", advice.MinPercent, "max_gogc", advice.MaxPercent)
		}
		if cfg.TempFileMaxAge > 0 {
			go sweepStaleTemps(ctx, s, cfg.TempFileMaxAge, log)
		}
	}

	// --artifacts-only serves no tracking routes and, as upstream 3.11,
	// does not touch the backend store at all.
	var api routes.Handlers
	var registryAPI *registry.API
	if !cfg.ArtifactsOnly {
		db, err := metadata.Open(ctx, cfg.BackendStoreURI, log)
		if err != nil {
			return fmt.Errorf("backend store %s: %w", stores.RedactURI(cfg.BackendStoreURI), err)
		}
		defer db.Close()
		trackingAPI := tracking.NewAPI(db, tracking.APIConfig{
			DefaultArtifactRoot: cfg.DefaultArtifactRoot,
			ServeArtifacts:      cfg.ServeArtifacts,
			Log:                 log,
			Artifacts:           artifacts,
			OpenStore: func(ctx context.Context, uri string) (stores.Store, func(), error) {
				return opener.Acquire(ctx, uri)
			},
		})
		var sourceRegex *regexp.Regexp
		if pat := os.Getenv(registry.SourceRegexEnv); pat != "" {
			if sourceRegex, err = regexp.Compile(pat); err != nil {
				return fmt.Errorf("%s: %w", registry.SourceRegexEnv, err)
			}
		}
		hooks, err := webhook.SettingsFromEnv(os.Getenv)
		if err != nil {
			return err
		}
		registryAPI = registry.NewAPI(db, registry.Config{Log: log, SourceRegex: sourceRegex, Webhooks: &hooks, Artifacts: artifacts, Metrics: reg,
			OpenStore: func(ctx context.Context, uri string) (stores.Store, func(), error) {
				return opener.Acquire(ctx, uri)
			},
		})
		tracingCfg := tracing.Config{Log: log, OpenStore: func(ctx context.Context, uri string) (stores.Store, func(), error) {
			return opener.Acquire(ctx, uri)
		}}
		if artifacts != nil { // a nil *Instrumented in the interface would not be nil
			tracingCfg.Artifacts = artifacts
		}
		tracingAPI := tracing.NewAPI(db, tracingCfg)
		otlpAPI := otlp.NewAPI(db, otlp.Config{Log: log})
		api = routes.Merge(trackingAPI.Handlers(), registryAPI.Handlers(), tracingAPI.Handlers(), otlpAPI.Handlers())
	}

	baseCtx, cancelAll := context.WithCancel(context.Background())
	defer cancelAll()
	srv, err := proxy.New(proxy.Options{
		Config:       cfg,
		Artifacts:    artifacts,
		API:          api,
		Registry:     reg,
		Gatherer:     reg,
		Log:          log,
		FerryVersion: ferryVersion(),
		BaseContext:  baseCtx,
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr(), err)
	}
	log.Info("ferry listening", "addr", ln.Addr().String(), "version", ferryVersion(),
		"mlflow_api", proxy.MLflowVersion, "serve_artifacts", cfg.ServeArtifacts,
		"artifacts_destination", stores.RedactURI(cfg.ArtifactsDestination), "artifacts_only", cfg.ArtifactsOnly,
		"static_prefix", cfg.StaticPrefix, "default_artifact_root", stores.RedactURI(cfg.DefaultArtifactRoot))

	sigCtx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.App.Listener(ln) }()

	select {
	case err := <-served:
		return err
	case <-sigCtx.Done():
	}
	log.Info("shutting down: waiting for in-flight requests", "timeout", cfg.ShutdownTimeout.String())
	if err := srv.App.ShutdownWithTimeout(cfg.ShutdownTimeout); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Error("shutdown", "err", err)
	} else if err != nil {
		log.Warn("shutdown timeout reached: cancelling remaining transfers")
	}
	if registryAPI != nil {
		// Queued webhook deliveries get the same bound as requests.
		drainCtx, cancelDrain := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		if err := registryAPI.Close(drainCtx); err != nil {
			log.Warn("webhook deliveries not drained before the shutdown timeout", "err", err)
		}
		cancelDrain()
	}
	cancelAll()
	if err := <-served; err != nil {
		log.Error("server stopped with error", "err", err)
	}
	log.Info("ferry stopped")
	return nil
}

// sweepStaleTemps removes what uploads cut off by a crash left in the
// artifacts destination (its stores.StaleUploadSweeper: the local, SFTP
// and FTP stores' temporary files, S3 and GCS multipart uploads under the
// prefix, Azure's uncommitted blocks) and logs how many. It runs beside the server: a large tree or bucket takes a while
// to list, and only leftovers older than maxAge are touched, so live
// uploads are safe; replicas starting together may all sweep (the sweep
// is idempotent).
func sweepStaleTemps(ctx context.Context, s *stores.Instrumented, maxAge time.Duration, log *slog.Logger) {
	n, err := gc.SweepUploads(ctx, s, maxAge)
	switch {
	case n < 0:
	case err != nil:
		log.Warn("stale uploads: sweep incomplete", "removed", n, "older_than", maxAge.String(), "err", err)
	default:
		log.Info("stale uploads removed", "removed", n, "older_than", maxAge.String())
	}
}

func gcCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Abort stale uploads in the artifacts destination and permanently delete runs, logged models and experiments in the `deleted` lifecycle stage (as `mlflow gc`)",
		Long: "Two jobs, safe to run from any replica or shell, several at once (every step is idempotent; no lock):\n" +
			"1. In --artifacts-destination, remove uploads older than --older-than (default 24h): S3 multipart uploads under the " +
			"destination's prefix never completed nor aborted, and the local store's .ferry-upload-* temporary files.\n" +
			"2. As `mlflow gc` (3.11): permanently delete runs and logged models (with their artifacts) and experiments in the " +
			"`deleted` lifecycle stage, deleted longer than --older-than ago when it is given, or only those of --run-ids / " +
			"--experiment-ids / --logged-model-ids; with --jobs or --job-ids also finished job records.",
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	backend := f.String("backend-store-uri", config.DefaultBackendStoreURI, "Tracking database to clean [env MLFLOW_BACKEND_STORE_URI]")
	dest := f.String("artifacts-destination", config.DefaultArtifactsDestination, "Store of proxied artifacts: where mlflow-artifacts: run roots resolve, and whose stale uploads are removed [env MLFLOW_ARTIFACTS_DESTINATION]")
	olderThan := f.String("older-than", "", "Only runs deleted, experiments and logged models last updated, jobs created and uploads started this long ago, as upstream: e.g. 30d, 1d2h3m4s, 1.5h. Unset: every deleted run, model and experiment, every finished job, uploads older than 24h")
	runIDs := f.String("run-ids", "", "Comma-separated runs to delete permanently (each must be deleted); default every deleted run")
	expIDs := f.String("experiment-ids", "", "Comma-separated experiments to delete permanently with all their runs (each must be deleted); default every deleted experiment")
	modelIDs := f.String("logged-model-ids", "", "Comma-separated logged models to delete permanently with their artifacts (each must be deleted); default every deleted logged model")
	jobs := f.Bool("jobs", false, "Also delete finished job records (SUCCEEDED, FAILED, TIMEOUT, CANCELED), created longer than --older-than ago when it is given")
	jobIDs := f.String("job-ids", "", "Comma-separated job records to delete (only finished ones are; missing ids are skipped); turns the job clean-up on without --jobs")
	workspace := f.String("workspace", "", "Upstream's workspace selection [env MLFLOW_WORKSPACE]: Ferry has no workspace mode, so giving it is an error, as upstream against a store without workspaces")
	allWorkspaces := f.Bool("all-workspaces", false, "Upstream's every-workspace selection: an error, as --workspace")
	uploadsOnly := f.Bool("uploads-only", false, "Only remove stale uploads; do not touch the tracking database")
	f.String("tracking-uri", "", "Accepted for compatibility with mlflow gc and ignored: Ferry deletes artifacts through --artifacts-destination itself")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		for flag, env := range map[string]string{"backend-store-uri": "MLFLOW_BACKEND_STORE_URI", "artifacts-destination": "MLFLOW_ARTIFACTS_DESTINATION"} {
			if v := os.Getenv(env); v != "" && !cmd.Flags().Changed(flag) {
				_ = cmd.Flags().Set(flag, v)
			}
		}
		if cmd.Flags().Changed("workspace") && *allWorkspaces {
			return errors.New("cannot use --workspace and --all-workspaces together")
		}
		ws := *workspace
		if ws == "" && !*allWorkspaces {
			ws = os.Getenv("MLFLOW_WORKSPACE") // upstream's envvar for --workspace
		}
		o := gc.Options{BackendStoreURI: *backend, ArtifactsDestination: *dest, OlderThanText: *olderThan,
			RunIDs: gc.SplitIDs(*runIDs), ExperimentIDs: gc.SplitIDs(*expIDs), LoggedModelIDs: gc.SplitIDs(*modelIDs),
			Jobs: *jobs, JobIDs: gc.SplitIDs(*jobIDs), Workspace: ws, AllWorkspaces: *allWorkspaces,
			Out: cmd.OutOrStdout(), Log: slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))}
		if *uploadsOnly {
			o.BackendStoreURI = ""
		}
		if *olderThan != "" {
			d, err := gc.ParseOlderThan(*olderThan)
			if err != nil {
				return err
			}
			o.OlderThan = d
		}
		opener := stores.NewOpener(stores.NewMetrics(prometheus.NewRegistry()), o.Log)
		defer opener.Close()
		return gc.Run(cmd.Context(), opener, o)
	}
	return cmd
}
