"""Render a report dict as one self-contained HTML page: inline CSS, inline SVG, no URLs.

The page is made only from the report dict (column-level numbers), so its size grows
with the number of columns, never with rows. Every string that came from the data
(column names, category values, messages quoting them) goes through :func:`_e`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

__all__ = ["render_html"]

_CSS = """
:root{--ok:#1a7f37;--warn:#b26b00;--crit:#c62828;--mute:#6b7280;--ref:#9ca3af;--cur:#2563eb}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#111827;
background:#f9fafb}
main{max-width:1200px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.verdict{border-left:8px solid var(--mute);background:#fff;padding:16px 20px;border-radius:6px;
box-shadow:0 1px 2px #0001}
.verdict.ok{border-color:var(--ok)}.verdict.warning{border-color:var(--warn)}
.verdict.critical{border-color:var(--crit)}
.status{font-weight:700;letter-spacing:.05em;text-transform:uppercase}
.ok .status,.lv-none{color:var(--ok)}.warning .status,.lv-warning{color:var(--warn)}
.critical .status,.lv-critical{color:var(--crit)}.lv-no-data{color:var(--mute)}
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px #0001}
th,td{padding:6px 10px;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:middle}
th{background:#f3f4f6;font-weight:600;font-size:13px}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.sev{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;
color:#fff;background:var(--mute)}
.sev.error,.sev.critical{background:var(--crit)}.sev.warning{background:var(--warn)}
.sev.none,.sev.ok{background:var(--ok)}
.muted{color:var(--mute)}.small{font-size:12px}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
code{font-size:12px;background:#f3f4f6;padding:0 3px;border-radius:3px;word-break:break-all}
svg{display:block}
"""

_JS = """
document.getElementById('only-drifted').addEventListener('change', function (e) {
  document.querySelectorAll('#drift-table tbody tr').forEach(function (tr) {
    tr.hidden = e.target.checked && tr.dataset.drifted !== 'true';
  });
});
"""

_W, _H, _GAP = 280, 64, 6  # chart size in px


def _e(value: Any) -> str:
    """Escape anything for HTML text and attribute values."""
    return html.escape(str(value), quote=True)


def _num(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:.{digits}g}" if abs(v) >= 1000 or (v and abs(v) < 1e-3) else f"{v:.{digits}f}"


def _pct(v: Any) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def render_html(report: Mapping[str, Any]) -> str:
    """The whole page as one string."""
    parts = [
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">",
        "<title>aiwarden drift and data-quality report</title>",
        f"<style>{_CSS}</style></head><body><main>",
        _verdict(report),
        _datasets(report),
        _quality(report.get("quality") or {}),
        _drift(report),
        _performance(report.get("performance") or {}),
        _footer(report),
        f"</main><script>{_JS}</script></body></html>\n",
    ]
    return "".join(parts)


def _verdict(report: Mapping[str, Any]) -> str:
    v = report.get("verdict") or {}
    status = str(v.get("status", "ok"))
    reasons = "".join(f"<li>{_e(r)}</li>" for r in v.get("reasons", [])) or "<li>No findings.</li>"
    return (f"<section class=\"verdict {_e(status)}\"><h1>Drift and data-quality report</h1>"
            f"<div class=\"status\">{_e(status)}</div><ul>{reasons}</ul></section>")


def _datasets(report: Mapping[str, Any]) -> str:
    rows = []
    for side, d in (report.get("datasets") or {}).items():
        rows.append(f"<tr><td>{_e(side)}</td><td><code>{_e(d.get('name'))}</code></td>"
                    f"<td class=\"n\">{_num(d.get('rows'))}</td>"
                    f"<td class=\"n\">{_num(d.get('columns'))}</td></tr>")
    schema = report.get("schema") or {}
    roles: dict[str, list[str]] = {}
    for c in schema.get("columns", []):
        roles.setdefault(c["role"], []).append(c["name"])
    role_txt = "; ".join(f"{_e(r)}: {', '.join(_e(n) for n in names)}"
                         for r, names in roles.items() if r != "feature")
    n_feat = len(roles.get("feature", []))
    return ("<h2>Datasets</h2><table><thead><tr><th>dataset</th><th>file</th><th>rows</th>"
            f"<th>columns</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<p class=\"small muted\">task {_e(schema.get('task', 'none'))}; {n_feat} features"
            f"{'; ' + role_txt if role_txt else ''}</p>")


def _quality(q: Mapping[str, Any]) -> str:
    findings = q.get("findings") or []
    if not findings:
        return "<h2>Data quality</h2><p>No findings.</p>"
    rows = []
    for f in findings:
        ex = f.get("examples") or []
        ex_txt = ", ".join(str(int(i)) for i in ex) if ex else "–"
        values = f.get("values") or {}
        val_txt = ""
        if values:
            shown = list(values.items())[:8]
            val_txt = ("<div class=\"small muted\">values: "
                       + ", ".join(f"<code>{_e(k)}</code>×{int(n)}" for k, n in shown)
                       + "</div>")
        rows.append(
            f"<tr><td><span class=\"sev {_e(f.get('severity'))}\">{_e(f.get('severity'))}</span>"
            f"</td><td>{_e(f.get('check'))}</td><td><code>{_e(f.get('column') or '–')}</code></td>"
            f"<td class=\"n\">{_num(f.get('count'))}</td><td class=\"n\">{_pct(f.get('rate'))}"
            f"</td><td>{_e(f.get('message'))}{val_txt}</td><td>{ex_txt}</td></tr>")
    return ("<h2>Data quality</h2><table><thead><tr><th>severity</th><th>check</th>"
            "<th>column</th><th>count</th><th>rate</th><th>finding</th>"
            f"<th>example rows</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            "<p class=\"small muted\">Example rows are 0-based positions in the current file.</p>")


def _drift(report: Mapping[str, Any]) -> str:
    drift = report.get("drift") or {}
    hists = report.get("histograms") or {}
    summaries = report.get("columns") or {}
    rows = []
    for c in drift.get("columns", []):
        level = str(c.get("level"))
        name = c.get("column")
        summ = summaries.get(name) or {}
        extra = ""
        if summ.get("mean_reference") is not None:
            extra = (f"<div class=\"small muted\">mean {_num(summ.get('mean_reference'))} → "
                     f"{_num(summ.get('mean_current'))}</div>")
        rows.append(
            f"<tr data-drifted=\"{'true' if c.get('drifted') else 'false'}\">"
            f"<td><code>{_e(name)}</code>{extra}</td><td>{_e(c.get('role'))}</td>"
            f"<td>{_e(c.get('method'))}</td><td class=\"n\">{_num(c.get('value'))}</td>"
            f"<td class=\"n\">{_num(c.get('threshold'))}</td>"
            f"<td class=\"n\">{_num(c.get('severity'), 2)}</td>"
            f"<td class=\"lv-{_e(level.replace(' ', '-'))}\"><b>{_e(level)}</b></td>"
            f"<td>{_chart(hists.get(name))}</td></tr>")
    legend = ("<p class=\"legend small muted\"><span style=\"background:var(--ref)\"></span>"
              "reference<span style=\"background:var(--cur);opacity:.7\"></span>current "
              "(shares of valid values; end bars outside the reference range)</p>")
    toggle = ("<label class=\"small\"><input type=\"checkbox\" id=\"only-drifted\"> "
              "only drifted columns</label>")
    return (f"<h2>Drift</h2>{toggle}{legend}<table id=\"drift-table\"><thead><tr><th>column</th>"
            "<th>role</th><th>method</th><th>value</th><th>threshold</th><th>severity</th>"
            f"<th>drift</th><th>distribution</th></tr></thead><tbody>{''.join(rows)}</tbody>"
            "</table><p class=\"small muted\">A column drifts when its distance exceeds the "
            "threshold (effect-size floor, sampling noise, reference variability); severity is "
            "value / threshold, 2 or more is critical.</p>")


def _bars(h: Mapping[str, Any]) -> tuple[list[str], list[float], list[float]]:
    labels = list(h.get("labels") or [])
    ref, cur = list(h.get("reference") or []), list(h.get("current") or [])
    if h.get("kind") == "numerical":
        below, above = h.get("below") or {}, h.get("above") or {}
        if (below.get("reference") or 0) > 0 or (below.get("current") or 0) > 0:
            labels.insert(0, f"below {_num(below.get('edge'))}")
            ref.insert(0, below.get("reference") or 0.0)
            cur.insert(0, below.get("current") or 0.0)
        if (above.get("reference") or 0) > 0 or (above.get("current") or 0) > 0:
            labels.append(f"above {_num(above.get('edge'))}")
            ref.append(above.get("reference") or 0.0)
            cur.append(above.get("current") or 0.0)
    return labels, [r or 0.0 for r in ref], [c or 0.0 for c in cur]


def _chart(h: Mapping[str, Any] | None) -> str:
    """Reference bars in grey with the current ones overlaid, a tooltip per bin."""
    if not h:
        return "<span class=\"small muted\">no chart</span>"
    labels, ref, cur = _bars(h)
    if not labels:
        return "<span class=\"small muted\">no chart</span>"
    top = max(max(ref, default=0.0), max(cur, default=0.0)) or 1.0
    n = len(labels)
    step = _W / n
    bar = max(step - (1.0 if n > 40 else 2.0), 0.5)
    out = [f"<svg width=\"{_W}\" height=\"{_H}\" viewBox=\"0 0 {_W} {_H}\" role=\"img\">"]
    inner = _H - _GAP
    for i, (label, r, c) in enumerate(zip(labels, ref, cur, strict=True)):
        x = i * step
        hr, hc = inner * r / top, inner * c / top
        out.append(
            f"<g><title>{_e(label)}: reference {_pct(r)}, current {_pct(c)}</title>"
            f"<rect x=\"{x:.1f}\" y=\"{_H - hr:.1f}\" width=\"{bar:.1f}\" height=\"{hr:.1f}\" "
            "fill=\"#9ca3af\"/>"
            f"<rect x=\"{x + bar * 0.2:.1f}\" y=\"{_H - hc:.1f}\" width=\"{bar * 0.6:.1f}\" "
            f"height=\"{hc:.1f}\" fill=\"#2563eb\" fill-opacity=\"0.7\"/></g>")
    out.append(f"<line x1=\"0\" y1=\"{_H - 0.5}\" x2=\"{_W}\" y2=\"{_H - 0.5}\" "
               "stroke=\"#d1d5db\"/></svg>")
    of = "text length" if h.get("of") == "length" else None
    caption = f"<div class=\"small muted\">{of}</div>" if of else ""
    return "".join(out) + caption


def _performance(perf: Mapping[str, Any]) -> str:
    ref = perf.get("reference") or {}
    real = perf.get("realised") or {}
    est = (perf.get("estimated") or {}).get("metrics") or {}
    if not (real or est):
        why = ("the current data has no target column and no scores"
               if perf.get("task") not in (None, "none") else "no target, prediction or scores")
        return f"<h2>Performance</h2><p class=\"muted\">Not computed: {_e(why)}.</p>"
    names: list[str] = []
    for source in (est, real, ref):
        names.extend(k for k in source if k not in names)
    rows = []
    for m in names:
        e = est.get(m)
        e_txt = "–" if not e else (f"{_num(e.get('estimate'))} "
                                   f"<span class=\"muted small\">[{_num(e.get('lower'))}, "
                                   f"{_num(e.get('upper'))}]</span>")
        rows.append(f"<tr><td>{_e(m)}</td><td class=\"n\">{_num(ref.get(m))}</td>"
                    f"<td class=\"n\">{e_txt}</td><td class=\"n\">{_num(real.get(m))}</td></tr>")
    conf = (perf.get("estimated") or {}).get("confidence")
    note = (f"<p class=\"small muted\">Estimated: CBPE from the scores alone, with a "
            f"{_pct(conf)} sampling band; it assumes calibration holds (covariate shift) and "
            "cannot see concept shift.</p>") if est else ""
    return ("<h2>Performance</h2><table><thead><tr><th>metric</th><th>reference (realised)</th>"
            "<th>current (estimated)</th><th>current (realised)</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>{note}")


def _footer(report: Mapping[str, Any]) -> str:
    t: Mapping[str, Any] = report.get("timings") or {}
    tim = ", ".join(f"{_e(k)} {float(v):.2f} s" for k, v in t.items() if v is not None)
    return (f"<p class=\"small muted\" style=\"margin-top:32px\">aiwarden "
            f"{_e(report.get('aiwarden_version', ''))}, generated "
            f"{_e(report.get('generated_at', ''))}. {tim}</p>")
