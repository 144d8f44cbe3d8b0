"""The RCA report for humans: the suspects first, then the evidence by section."""

from __future__ import annotations

from typing import Any

from aiwarden.rca.analysis import slice_values

__all__ = ["to_markdown"]


def to_markdown(report: dict[str, Any], top: int = 5) -> str:
    w = report["window"]
    lines = [f"# Root-cause analysis: {report['model']} ({report['version']})", "",
             f"Window {w['start']} – {w['end']}, {w['rows']} rows.", "", "## Top suspects", ""]
    suspects = report.get("suspects", [])[:top]
    if not suspects:
        lines.append("No suspect found: nothing drifted, no quality violation, no failing "
                     "slice and no recent change.")
    for i, s in enumerate(suspects, 1):
        lines.append(f"{i}. **{s['name']}** ({s['kind']}, score {s['score']:.2f}): "
                     f"{s['summary']}")
    drift = report.get("drift")
    if drift and drift.get("features"):
        weighed = any("importance_share" in d for d in drift["features"])
        lines += ["", "## Drift", "", "| feature | method | value | threshold | explains |"
                  + (" model leans on it |" if weighed else ""),
                  "|---|---|---:|---:|---:|" + ("---:|" if weighed else "")]
        lines += [f"| {d['column']} | {d['method']} | {d['value']:.4g} | {d['threshold']:.4g} "
                  f"| {d['contribution']:.0%} |"
                  + (f" {d['importance_share']:.0%} |" if "importance_share" in d
                     else " - |" if weighed else "") for d in drift["features"]]
        if drift.get("impact_unavailable"):
            lines += ["", f"Not weighed by importance: {drift['impact_unavailable']}"]
    quality = report.get("quality")
    if quality and (quality.get("findings") or quality.get("quarantined")):
        lines += ["", "## Data quality", ""]
        for f in quality.get("findings", []):
            ids = ", ".join(map(str, f["prediction_ids"][:10]))
            lines.append(f"- [{f['severity']}] {f['message']}"
                         f"{' — new in this window' if f['new'] else ''}"
                         f"{f' (rows: {ids})' if ids else ''}")
        if quality.get("quarantined"):
            lines.append(f"- {quality['quarantined']} row(s) quarantined in the window")
    slices = report.get("slices")
    if slices and slices.get("slices"):
        lines += ["", f"## Failing slices ({slices['labelled_rows']} labelled rows)", ""]
        for s in slices["slices"]:
            metric = ("unsafe_rate" if "examples" in s  # an LLM's: aiwarden.rca.llm
                      else slices.get("metric", "error_rate"))
            lines.append(f"- {s['description']}: {slice_values(metric, s)} "
                         f"({s['support']} rows)")
            lines += [f"  - `{x['request_id']}`: {_quoted(x['excerpt'])}"
                      for x in s.get("examples", [])]
    if report.get("changes"):
        lines += ["", "## Recent changes", ""]
        lines += [f"- {c['kind'].replace('_', ' ')} {c['name']} at {c['at']}"
                  for c in report["changes"]]
    return "\n".join(lines) + "\n"


def _quoted(text: str | None) -> str:
    """A user's text as inline code, so no markup in it renders (redacted upstream)."""
    if not text:
        return "(not stored)"
    flat = " ".join(text.split())
    fence = "``" if "`" in flat else "`"
    return f"{fence} {flat} {fence}"
