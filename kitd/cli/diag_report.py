"""kitctl diag --out DIR and --verify FILE: the diagnostics report for the vendor, and its check.

Its one job: write the report the daemon made and signed (POST /api/v1/diagnostics/report) as
``diagnostics-<run_id>.json`` (the signed statement, exactly as the kit signed it) and
``diagnostics-<run_id>.html`` (a page to read: failing checks first, then warnings, ok, not
available, each with its values and what to do in Bahasa Indonesia and English; every text
escaped); and check such a JSON file with the kit's certificate alone, as a vendor does.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from cryptography import x509
from kitformats.report_statements import check_report
from kitformats.signing import common_name

from kitd.durable_files import write_atomically

# The page's order: what needs a hand first.
PAGE_ORDER = (
    ("failed", "Failed"),
    ("warning", "Warnings"),
    ("ok", "OK"),
    ("not_available", "Not available"),
)
STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1em; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.5em; text-align: left; vertical-align: top; }
td.values { font-family: monospace; white-space: pre-wrap; }
section.failed h3 { color: #b00020; } section.warning h3 { color: #8a5a00; }
p.unsigned { color: #b00020; font-weight: bold; }
pre { background: #f4f4f4; padding: 0.5em; white-space: pre-wrap; word-break: break-all; }
"""


def report_names(run_id: str) -> tuple[str, str]:
    return f"diagnostics-{run_id}.json", f"diagnostics-{run_id}.html"


def _e(value: Any) -> str:
    """Any value as escaped text for the page (JSON for what is not a string)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return html.escape(text, quote=True)


def _values(values: dict[str, Any]) -> str:
    return "\n".join(f"{_e(k)} = {_e(v)}" for k, v in values.items())


def _check_rows(checks: list[dict[str, Any]]) -> list[str]:
    rows = [
        "<table><tr><th>Check</th><th>Device</th><th>Values</th>"
        "<th>Bahasa Indonesia</th><th>English</th><th>Seconds</th></tr>"
    ]
    for check in checks:
        message = check.get("message") or {}
        rows.append(
            f'<tr class="check" id="check-{_e(check["id"])}"><td>{_e(check["id"])}</td>'
            f"<td>{_e(check['device'] or 'unit')}</td>"
            f'<td class="values">{_values(check["values"])}</td>'
            f"<td>{_e(message.get('id', ''))}</td><td>{_e(message.get('en', ''))}</td>"
            f"<td>{_e(check['duration_s'])}</td></tr>"
        )
    rows.append("</table>")
    return rows


def _table(rows: list[tuple[str, Any]]) -> str:
    return "<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows) + "</table>"


def report_page(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML page."""
    statement = report["statement"]
    run, kit_id = statement["run"], statement["kit_id"]
    json_name = report_names(run["run_id"])[0]
    title = f"Diagnostics report {run['run_id']}, kit {kit_id}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
    ]
    if report.get("signature"):
        parts.append(
            f"<p>This page is a reading copy. {_e(json_name)} is the report signed by the kit's key: "
            f"<code>kitctl diag --verify {_e(json_name)} --kit-cert KIT.crt</code> checks it with the "
            "kit's certificate.</p>"
        )
    else:
        parts.append(
            f'<p class="unsigned">NOT SIGNED: the kit could not sign this report '
            f"({_e(report.get('unsigned', 'no reason given'))}).</p>"
        )
    counts = run["counts"]
    parts.append(
        _table(
            [
                ("Kit", kit_id),
                ("Run", f"{run['run_id']} ({'quick' if run['quick'] else 'full'})"),
                ("Started", run["started_at"]),
                ("Duration (s)", run["duration_s"]),
                ("Status", run["status"].upper()),
                (
                    "Counts",
                    f"{counts['failed']} failed, {counts['warning']} warnings, {counts['ok']} ok, "
                    f"{counts['not_available']} not available",
                ),
                ("Kept in the kit's history", run.get("stored", "unknown")),
                ("Report made at", statement["created_at"]),
            ]
        )
    )
    parts.append("<h2>Checks</h2>")
    for status, heading in PAGE_ORDER:
        chosen = [c for c in run["checks"] if c["status"] == status]
        if not chosen:
            continue
        parts.append(f'<section class="{status}"><h3>{heading} ({len(chosen)})</h3>')
        parts.extend(_check_rows(chosen))
        parts.append("</section>")
    parts.append("<h2>Devices (last status and why)</h2>")
    device_rows = [
        "<table><tr><th>Device</th><th>Kind</th><th>Status</th><th>Why</th><th>Since</th>"
        "<th>Model</th><th>Serial</th><th>Firmware</th><th>URI</th></tr>"
    ]
    for d in statement["devices"]:
        cells = [d["id"], d["kind"], d["status"], d["reason"], d["since"], d.get("model"), d.get("serial")]
        cells += [d.get("firmware"), d.get("uri")]
        device_rows.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
    parts.append("".join(device_rows) + "</table>")
    parts.append("<h2>Software</h2>")
    parts.append(_table(list(statement["software"].items())))
    config = statement["configuration"]
    parts.append("<h2>Configuration</h2>")
    parts.append(f"<p>From {_e(config.get('source') or 'built-in defaults')}. {_e(config['redaction'])}</p>")
    redacted = ", ".join(config["redacted"]) or "nothing in this configuration"
    parts.append(f"<p>Redacted: {_e(redacted)}.</p>")
    parts.append(_table(list(config["values"].items())))
    parts.append(_table([(f"device {d['id']}", d["uri"]) for d in config["devices"]]))
    recent = statement["log"]
    parts.append("<h2>Recent log lines of the daemon</h2>")
    if recent["lines"]:
        parts.append(f"<p>From {_e(recent['source'])}; oldest first.</p>")
        parts.append("<pre>" + "\n".join(_e(line) for line in recent["lines"]) + "</pre>")
    else:
        parts.append(f"<p>None: {_e(recent.get('note') or 'the daemon kept no log lines')}</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Both files in ``out`` (made if missing); their paths. OSError when they cannot be written."""
    out.mkdir(parents=True, exist_ok=True)
    json_name, html_name = report_names(report["statement"]["run"]["run_id"])
    # The JSON as the kit signed it: its signature covers the statement's canonical form, so
    # indentation is free; a vendor's reader should not have to care about key order.
    document = (json.dumps(report, indent=1, ensure_ascii=False) + "\n").encode()
    write_atomically(out / json_name, document, mode=0o644)
    write_atomically(out / html_name, report_page(report).encode(), mode=0o644)
    return out / json_name, out / html_name


def verify_lines(document: Any, kit: x509.Certificate) -> list[str]:
    """What kitctl says of a report that verifies (ReportRejected when it does not)."""
    statement = check_report(document, kit)
    run, counts = statement["run"], statement["run"]["counts"]
    return [
        f"diagnostics report {run['run_id']} of kit {statement['kit_id']} ({statement['created_at']}): "
        f"signature OK, signed by {common_name(kit)!r}",
        f"run: {run['status'].upper()}, {counts['failed']} failed, {counts['warning']} warnings",
    ]
