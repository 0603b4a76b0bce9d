#!/usr/bin/env python3
"""Reads `go test -json` on stdin and prints what a person needs from it.

Printed as it happens: each package's ok/FAIL line with its time, the whole
output of every failed test (and of a package that failed outside any test:
a panic, a TestMain exit, a build error). At the end: the slowest top-level
tests, and the slowest packages, so a suite close to its time budget shows
where its time goes (test/run.sh).

Exit status: 1 when anything failed, else 0. test/run.sh also checks go
test's own status, so a crash of this script cannot hide a failure.
"""
import json
import sys
from collections import defaultdict

SLOWEST = 20


def main() -> int:
    out = defaultdict(list)  # (package, test) -> output lines
    elapsed_tests = []  # (seconds, package, test) for top-level tests
    elapsed_pkgs = []  # (seconds, package)
    failed = False
    for raw in sys.stdin:
        try:
            ev = json.loads(raw)
        except ValueError:
            # go test prints some failures (e.g. a bad flag) as plain text.
            sys.stdout.write(raw)
            continue
        action = ev.get("Action")
        pkg = ev.get("Package") or ev.get("ImportPath") or ""
        test = ev.get("Test") or ""
        if action == "build-output":
            sys.stdout.write(ev.get("Output", ""))
        elif action == "build-fail":
            failed = True
        elif action == "output":
            out[(pkg, test)].append(ev.get("Output", ""))
        elif action in ("pass", "fail", "skip"):
            secs = ev.get("Elapsed", 0.0)
            if test:
                if action == "fail":
                    failed = True
                    sys.stdout.write("".join(out[(pkg, test)]))
                if "/" not in test:
                    elapsed_tests.append((secs, pkg, test))
                out.pop((pkg, test), None)
                continue
            # The package's own line.
            own = out.pop((pkg, ""), [])
            elapsed_pkgs.append((secs, pkg))
            if action == "fail":
                failed = True
                # Output outside any test: a panic, TestMain, a timeout;
                # it ends with go test's own FAIL line when there is one.
                sys.stdout.write("".join(own))
                if own and own[-1].startswith("FAIL"):
                    continue
            elif own and (own[-1].startswith("ok") or "[no test files]" in own[-1]):
                sys.stdout.write(own[-1])
                continue
            status = {"pass": "ok  ", "fail": "FAIL", "skip": "?   "}[action]
            sys.stdout.write(f"{status}\t{pkg}\t{secs:.3f}s\n")
        sys.stdout.flush()

    def short(pkg: str) -> str:
        return pkg.removeprefix("github.com/ferryml/ferry/")

    print(f"\nslowest tests (of {len(elapsed_tests)} top-level):")
    for secs, pkg, test in sorted(elapsed_tests, reverse=True)[:SLOWEST]:
        print(f"  {secs:7.1f}s  {short(pkg)}.{test}")
    print(f"slowest packages (sum of all: {sum(s for s, _ in elapsed_pkgs):.0f}s):")
    for secs, pkg in sorted(elapsed_pkgs, reverse=True)[:10]:
        print(f"  {secs:7.1f}s  {short(pkg)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
