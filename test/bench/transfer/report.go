package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// results is everything one run measured.
type results struct {
	size int64
	runs int
	env  environment

	cpSync, ferryPut, discardPut, fsGet, ferryGet []sample

	rssAtStart, rssAfterUpload, rssFerry, rssFileServer int64
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// print writes the report table. Every figure in it was measured in this
// run; only the targets are constants.
func (r *results) print(out io.Writer) {
	e := r.env
	fmt.Fprintf(out, "\nFerry transfer benchmark: %s file, %d run(s) of each measurement, median and min–max\n", fmtBytes(r.size), r.runs)
	fmt.Fprintf(out, "  machine:  %d CPUs, %s; load average %s at start, %s at end; %s elapsed\n",
		e.cpus, e.goVersion, e.loadBefore, e.loadAfter, time.Since(e.started).Round(time.Second))
	fmt.Fprintf(out, "  ferry:    %s (%s)\n", e.ferryVersion, e.ferrySource)
	fmt.Fprintf(out, "  data dir: %s (%s)\n", e.dir, e.fs)
	fmt.Fprintf(out, "  upload:   baseline = cp + `sync FILE DIR` (fsync of the copy and its directory, as Ferry does before its 200); source in page cache; destinations removed and dirty pages written back before each run\n")
	fmt.Fprintf(out, "  download: the same file from both servers, page cache warm, one untimed warm-up each; same client, %s reads into a discarding writer\n", fmtBytes(clientBufferSize))
	fmt.Fprintf(out, "  reference: the same PUT to a net/http handler that reads the body into nothing — the HTTP transport alone, no disk: no HTTP upload can beat it here\n")
	fmt.Fprintf(out, "  MB/s = 10^6 bytes/s; server CPU = user+sys seconds of the serving process per transfer (cp+sync for the baseline)\n\n")

	up, upBase := summarize(r.size, r.ferryPut), summarize(r.size, r.cpSync)
	down, downBase := summarize(r.size, r.ferryGet), summarize(r.size, r.fsGet)
	upRatio, downRatio := ratio(up.median, upBase.median), ratio(down.median, downBase.median)

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measurement\t\tMB/s\tmin–max\tserver CPU\tFerry/baseline\ttarget\tresult")
	row := func(kind, name string, s summary) {
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f–%.1f\t%.2f s", kind, name, s.median, s.min, s.max, s.cpu)
	}
	row("upload", "cp + fsync (baseline)", upBase)
	fmt.Fprintln(tw, "\t\t\t")
	row("upload", "Ferry PUT", up)
	fmt.Fprintf(tw, "\t%.2f×\t≥ %.2f×\t%s\n", upRatio, uploadTarget, verdict(upRatio >= uploadTarget))
	ceiling := summarize(r.size, r.discardPut)
	row("upload", "PUT to net/http, discarded (reference)", ceiling)
	fmt.Fprintf(tw, "\t%.2f×\t\t\n", ratio(ceiling.median, upBase.median))
	row("download", "net/http FileServer (baseline)", downBase)
	fmt.Fprintln(tw, "\t\t\t")
	row("download", "Ferry GET", down)
	fmt.Fprintf(tw, "\t%.2f×\t≥ %.2f×\t%s\n", downRatio, downloadTarget, verdict(downRatio >= downloadTarget))
	fmt.Fprintf(tw, "peak RSS\tFerry (VmHWM, whole run)\t%s\t\t\t\t< %s\t%s\n",
		fmtBytes(r.rssFerry), fmtBytes(rssTarget), verdict(r.rssFerry < rssTarget))
	fmt.Fprintf(tw, "peak RSS\tnet/http helper (reference)\t%s\t\t\t\t\t\n", fmtBytes(r.rssFileServer))
	tw.Flush()
	fmt.Fprintf(out, "\n  Ferry's VmHWM: %s right after start, %s after the uploads, %s at the end: the transfers added %s\n",
		fmtBytes(r.rssAtStart), fmtBytes(r.rssAfterUpload), fmtBytes(r.rssFerry), fmtBytes(max(0, r.rssFerry-r.rssAtStart)))
	if r.size != rssTargetSize {
		fmt.Fprintf(out, "  (the RSS target is stated for a %s object; checked here at %s)\n", fmtBytes(rssTargetSize), fmtBytes(r.size))
	}
	fmt.Fprintln(out, "\n  A MISS is reported, not failed: this is a benchmark, and the exit status is 0.")
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
