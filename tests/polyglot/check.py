"""Reads executed chapters and says, per chapter, what ran: cells, error outputs, charts, checks.

    /usr/bin/python3 tests/polyglot/check.py DIR [--compare OTHER_DIR]

DIR holds executed copies (NN-*.ipynb) from one host; with --compare, the same chapters executed by another host
(the lab's `lab run` writes artifacts/run/). Fails (exit 1) when a chapter has an error output, a cell that drew a
chart in the other host draws none here, a cell's checks differ in number, or no output carries plotly.js although
charts were drawn. A chart is a text/html output holding the lab's chart marker and a Plotly.newPlot call; a check
is an output of Check.That / Check.Equal... that passed, alone or as a row of a table of checks (a failed check is
an error).
"""
import glob
import os
import sys

import nbformat

CHART = "data-lab-plotly="
PLOTLY_JS = "data-lab-plotly-js="


def text_of(output):
    if output.get("output_type") == "stream":
        return output.get("text", "")
    data = output.get("data", {})
    return "".join(data.get("text/html", "")) + "\n" + "".join(data.get("text/plain", ""))


def check_rows(output):
    html = "".join(output.get("data", {}).get("text/html", ""))
    if "<th>Claim</th><th>Evidence</th>" not in html:
        return 0
    return html.count("<tr><td>")


def read(path):
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    per_cell = []
    for c in cells:
        outs = c.get("outputs", [])
        html = ["".join(o.get("data", {}).get("text/html", "")) for o in outs if o.get("output_type") in ("display_data", "execute_result", "update_display_data")]
        stderr = "".join("".join(o.get("text", "")) for o in outs if o.get("output_type") == "stream" and o.get("name") == "stderr")
        # The Jupyter kernel reports a compile error as a bare "compilation error" and the diagnostics on stderr.
        errors = [dict(o, traceback=list(o.get("traceback", [])) + [stderr]) for o in outs if o.get("output_type") == "error"]
        # A passed check shows as a "lab-check-ok" line, or as a row of a table of checks (Claim, Evidence).
        checks = sum(text_of(o).count("lab-check-ok") + check_rows(o) for o in outs)
        charts = sum(1 for h in html if CHART in h and "Plotly.newPlot" in h)
        per_cell.append({
            "charts": charts, "checks": checks, "errors": errors,
            "plotly_js": any(PLOTLY_JS in h for h in html),
        })
    return per_cell


def describe(err):
    """The error's name and first informative line (the Jupyter kernel puts the compiler's message in the traceback)."""
    lines = [l for l in (err.get("evalue") or "").splitlines() if l.strip()]
    lines += [l for t in err.get("traceback", []) for l in t.splitlines() if l.strip()]
    detail = next((l for l in lines if l.strip() not in ("compilation error", "Cell execution failed")), lines[0] if lines else "")
    return "%s: %s" % (err.get("ename", "?"), detail.strip()[:200])


def main():
    args = sys.argv[1:]
    compare = None
    if "--compare" in args:
        i = args.index("--compare")
        compare = args[i + 1]
        del args[i:i + 2]
    folder = args[0]
    paths = sorted(glob.glob(os.path.join(folder, "[0-9][0-9]-*.ipynb")))
    if not paths:
        print("check: no executed chapters in %s" % folder)
        return 1
    failed = []
    print("%-40s %5s %6s %6s %6s  %s" % ("chapter", "cells", "errors", "charts", "checks", "verdict"))
    for path in paths:
        name = os.path.basename(path)
        cells = read(path)
        problems = []
        for i, c in enumerate(cells):
            for e in c["errors"]:
                problems.append("code cell %d: %s" % (i + 1, describe(e)))
        charts = sum(c["charts"] for c in cells)
        if charts and not any(c["plotly_js"] for c in cells):
            problems.append("%d charts but no output carries plotly.js" % charts)
        other = os.path.join(compare, name) if compare else None
        if other and os.path.exists(other):
            theirs = read(other)
            if len(theirs) != len(cells):
                problems.append("%d code cells here, %d in %s" % (len(cells), len(theirs), compare))
            for i, (a, b) in enumerate(zip(cells, theirs)):
                if b["charts"] and not a["charts"]:
                    problems.append("code cell %d drew a chart in %s and none here" % (i + 1, compare))
                if a["checks"] != b["checks"] and not a["errors"]:
                    problems.append("code cell %d: %d checks passed here, %d in %s" % (i + 1, a["checks"], b["checks"], compare))
        elif compare:
            problems.append("no executed copy in %s to compare with" % compare)
        checks = sum(c["checks"] for c in cells)
        errors = sum(len(c["errors"]) for c in cells)
        print("%-40s %5d %6d %6d %6d  %s" % (name, len(cells), errors, charts, checks, "ok" if not problems else "FAILED"))
        for p in problems:
            print("    " + p)
        if problems:
            failed.append(name)
    if failed:
        print("check: %d of %d chapters failed: %s" % (len(failed), len(paths), ", ".join(failed)))
        return 1
    print("check: %d chapters, no errors" % len(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
