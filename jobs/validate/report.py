"""The validation report a person reads: one static HTML page rendered from the JSON summary.

Static on purpose (no script, no external assets): it opens from S3, a laptop or an e-mail
attachment alike, and it always says exactly what summary.json says because it is made from it.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from jobs.validate.gx_artifacts import docs_index_rel

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #1d1d1f; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; }
.verdict { padding: .6em 1em; border-radius: 6px; font-weight: 600; }
.passed { background: #e3f6e8; color: #14532d; } .failed { background: #fde2e1; color: #7f1d1d; }
table { border-collapse: collapse; width: 100%; margin: .5em 0; }
th, td { border-bottom: 1px solid #ddd; padding: .3em .5em; text-align: left; vertical-align: top; }
th { background: #f4f4f5; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: .92em; } .ok { color: #15803d; } .bad { color: #b91c1c; font-weight: 600; }
.warn { color: #a16207; font-weight: 600; } details { margin: .3em 0; } summary { cursor: pointer; }
"""


def _samples(outcome: dict[str, Any]) -> str:
    if outcome.get("error"):
        return escape(str(outcome["error"]))
    if outcome.get("samples"):
        return "<code>" + escape(json.dumps(outcome["samples"], default=str)) + "</code>"
    if outcome.get("observed") is not None:
        return "observed <code>" + escape(json.dumps(outcome["observed"], default=str)[:300]) + "</code>"
    return ""


def _count(outcome: dict[str, Any]) -> str:
    count = outcome.get("unexpected_count")
    if count is None:
        return ""
    percent = outcome.get("unexpected_percent")
    return f"{count}" + (f" ({percent:.3g}%)" if percent is not None else "")


def _problem_table(table_id: str, outcomes: list[dict[str, Any]], empty: str) -> str:
    if not outcomes:
        return f'<p id="{table_id}">{escape(empty)}</p>'
    rows = "".join(
        f"<tr><td><code>{escape(o['suite'])}</code></td><td>{escape(o['description'])}</td>"
        f"<td><code>{escape(o['expectation'])}</code></td><td class=num>{_count(o)}</td><td>{_samples(o)}</td></tr>"
        for o in outcomes)
    return (f'<table id="{table_id}"><tr><th>output</th><th>expectation</th><th>GX type</th>'
            f"<th>unexpected</th><th>sample values / observed</th></tr>{rows}</table>")


def _status(outcome: dict[str, Any]) -> str:
    if outcome["success"]:
        return '<span class="ok">passed</span>'
    if outcome["severity"] == "critical":
        return '<span class="bad">FAILED</span>'
    return '<span class="warn">warning</span>'


def _suite_details(name: str, outcomes: list[dict[str, Any]], rows: int | None) -> str:
    failed = sum(not o["success"] for o in outcomes)
    head = f"<code>{escape(name)}</code>: {len(outcomes) - failed}/{len(outcomes)} passed"
    head += f", {rows} rows" if rows is not None else ""
    body = "".join(
        f"<tr><td>{_status(o)}</td><td>{escape(o['severity'])}</td><td>{escape(o['description'])}</td>"
        f"<td class=num>{_count(o)}</td><td>{_samples(o) if not o['success'] else ''}</td></tr>"
        for o in outcomes)
    open_attr = " open" if failed else ""
    return (f"<details{open_attr}><summary>{head}</summary><table><tr><th>status</th><th>severity</th>"
            f"<th>expectation</th><th>unexpected</th><th>details</th></tr>{body}</table></details>")


def _docs_link(summary: dict[str, Any]) -> str:
    """Where GX's Data Docs hold every expectation of this run and every date before it. The link is
    relative (reports/validation/dt=D/ -> gx/...), so it works on a laptop and on S3 alike."""
    if not summary.get("data_docs"):
        return ""
    engine = summary.get("engine", "fast")
    return (f'<p id="data-docs">Every expectation with its observed values, and earlier dates: '
            f'<a href="../../../{escape(docs_index_rel())}">Great Expectations Data Docs</a> '
            f'(<code>{escape(summary["data_docs"])}</code>). Engine: <code>{escape(engine)}</code>.</p>')


def render_html(summary: dict[str, Any]) -> str:
    passed = summary["passed"]
    verdict = ("PASSED: the marts may be loaded" if passed
               else f"FAILED: {summary['critical_failures']} critical expectation(s) failed, the load is blocked")
    suites = "".join(_suite_details(name, outcomes, summary["rows"].get(name))
                     for name, outcomes in summary["suites"].items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Validation dt={escape(summary['dt'])}: {'passed' if passed else 'FAILED'}</title>
<style>{STYLE}</style></head>
<body>
<h1>Validation of dt={escape(summary['dt'])}</h1>
<p class="verdict {'passed' if passed else 'failed'}" id="verdict">{escape(verdict)}</p>
<p>Run <code>{escape(summary['run_id'])}</code>, validated at {escape(summary['validated_at'])} in
{summary['seconds']} s: {summary['expectations']} expectations, {summary['critical_failures']} critical failure(s),
{summary['warnings']} warning(s). Quarantine threshold {summary['max_quarantine_share']:.2%}.</p>
{_docs_link(summary)}
{"" if summary.get("complete", True) else
 '<p class="verdict failed" id="partial">Partial validation (--only): it never clears the load.</p>'}
<h2>Critical failures (these block the load)</h2>
{_problem_table("critical-failures", summary["failures"], "None.")}
<h2>Warnings (reported, not blocking)</h2>
{_problem_table("warnings", summary["warned"], "None.")}
<h2>Every expectation, by output</h2>
{suites}
</body></html>
"""
