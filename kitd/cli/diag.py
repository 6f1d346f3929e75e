"""kitctl diag: run the kit's checks through the daemon, and read their history.

    kitctl diag [--quick] [--json]                 run every check (or the quick subset) now
    kitctl diag --history [--check ID] [--limit N] the last runs, or one check's trend
    kitctl diag --out DIR [--quick]                run, then write the signed report for the vendor
    kitctl diag --verify FILE --kit-cert KIT.crt   check such a report with the kit's certificate

The daemon holds the devices, so the checks run in it (over its socket, as a technician).
Output: one line per check, failing ones first, with what to do (English; the touch screen
says it in Bahasa Indonesia too). ``--out`` writes diagnostics-<run_id>.json (signed by the
kit's key in the daemon) and .html (kitd.cli.diag_report). Exit 0: no check failed (a report
verified); 1: a check failed, the daemon could not be asked, the report could not be written
(or does not verify); 2: bad usage or configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from kitformats.named_files import read_named_file
from kitformats.signing import read_certificate

from kitd.cli.daemon_client import DaemonClient, DaemonError, DaemonUnreachable
from kitd.cli.diag_report import verify_lines, write_report
from kitd.cli.inputs import InputUnreadable, json_document
from kitd.cli.options import add_api_option, add_config_option, client_from_args
from kitd.durable_files import why_no_folder
from kitd.errors import KitError
from kitd.store.diagnostics import DEFAULT_HISTORY, MAX_HISTORY, history_limit

ORDER = {"failed": 0, "warning": 1, "not_available": 2, "ok": 3}
MARK = {"failed": "FAILED", "warning": "warning", "not_available": "n/a", "ok": "ok"}
# A run over the socket waits for the slowest check's time limit, at worst their sum.
RUN_TIMEOUT_S = 300.0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "diag", help="run the kit's checks (devices, unit, data) or show their history"
    )
    parser.add_argument(
        "--quick", action="store_true", help="only the quick subset a visit runs before it starts"
    )
    parser.add_argument("--json", action="store_true", help="the run (or the history) as the API answers it")
    parser.add_argument("--history", action="store_true", help="the stored runs instead of a new one")
    parser.add_argument("--check", metavar="ID", help="with --history: one check's findings over time")
    parser.add_argument(
        "--limit",
        type=_history_limit,
        metavar="N",
        help=f"with --history: how many runs (1-{MAX_HISTORY}, default {DEFAULT_HISTORY})",
    )
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="write the signed report for the vendor (JSON and HTML) here"
    )
    parser.add_argument("--verify", type=Path, metavar="FILE", help="check a report (its JSON) instead")
    parser.add_argument("--kit-cert", type=Path, metavar="CERT", help="with --verify: the kit's certificate")
    add_api_option(parser, parser)
    add_config_option(parser)
    parser.set_defaults(func=run)


def _history_limit(text: str) -> int:
    limit = history_limit(text)
    if limit is None:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number from 1 to {MAX_HISTORY}")
    return limit


# A list or object value shown on a line when its JSON is at most this long (dead rows, steps);
# longer ones are in --json.
SHOWN_JSON = 80


def _values(values: dict[str, Any]) -> str:
    shown = []
    for k, v in values.items():
        text = json.dumps(v, ensure_ascii=False, separators=(",", ":"))
        if not isinstance(v, list | dict) or len(text) <= SHOWN_JSON:
            shown.append(f"{k}={text}")
    return ", ".join(shown)


def run_lines(result: dict[str, Any]) -> list[str]:
    """A run for a technician: a heading, then failing checks first, each with what to do."""
    counts = result["counts"]
    kind = "quick" if result["quick"] else "full"
    lines = [
        f"diagnostics {result['run_id']} ({kind}) on kit {result['kit']['id']} "
        f"at {result['started_at']}: {result['status'].upper()} "
        f"({counts['failed']} failed, {counts['warning']} warnings, {counts['ok']} ok, "
        f"{counts['not_available']} not available; {result['duration_s']:.1f} s)"
    ]
    for check in sorted(result["checks"], key=lambda c: ORDER[c["status"]]):
        line = f"  {MARK[check['status']]:<7} {check['id']}"
        facts = _values(check["values"])
        if facts:
            line += f"  [{facts}]"
        if check["message"]:
            line += f"\n          {check['message']['en']}"
        lines.append(line)
    if result.get("stored") is False:
        lines.append("  (this run could not be stored in the kit's history: see the daemon's log)")
    return lines


def history_lines(answer: dict[str, Any]) -> list[str]:
    if "runs" in answer:
        if not answer["runs"]:
            return ["no diagnostics run is stored yet: kitctl diag"]
        return [
            f"{r['started_at']}  {r['run_id']}  {'quick' if r['quick'] else 'full ':<5}  {r['status']:<7}  "
            f"{r['counts']['failed']} failed, {r['counts']['warning']} warnings"
            for r in answer["runs"]
        ]
    if not answer["findings"]:
        return [f"check {answer['check']}: no stored run ran it yet"]
    lines = [f"check {answer['check']}, oldest first:"]
    for f in answer["findings"]:
        lines.append(f"  {f['started_at']}  {f['status']:<13}  {_values(f['values'])}")
        if f.get("message"):  # why it was not ok, and what was to be done
            lines.append(f"      {f['message']['en']}")
    return lines


def _ask(client: DaemonClient, path: str, shape: str) -> dict[str, Any]:
    return client.checked_json("GET", path, timeout_s=RUN_TIMEOUT_S, shape=shape)


def verify(args: argparse.Namespace) -> int:
    """A vendor's check of a report: the kit's certificate is all it needs (no daemon)."""
    if args.kit_cert is None:
        print("kitctl diag: --verify needs --kit-cert KIT.crt (the kit's certificate)", file=sys.stderr)
        return 2
    try:
        kit = read_certificate(args.kit_cert)
        document = json_document(read_named_file(args.verify))
    except KitError as exc:
        print(f"kitctl diag: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"kitctl diag: {args.verify}: cannot read: {exc.strerror}", file=sys.stderr)
        return 2
    except InputUnreadable as exc:
        print(f"kitctl diag: {args.verify}: rejected: {exc}", file=sys.stderr)
        return 1
    try:
        lines = verify_lines(document, kit)
    except KitError as exc:
        print(f"kitctl diag: {args.verify}: rejected: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


def _usage_problem(args: argparse.Namespace) -> str | None:
    if args.verify is not None:
        others = args.out or args.history or args.quick or args.json or args.check or args.limit is not None
        return "--verify checks a report: it takes --kit-cert only" if others else None
    if args.kit_cert is not None:
        return "--kit-cert goes with --verify"
    if (args.check is not None or args.limit is not None) and not args.history:
        return "--check and --limit go with --history"
    if args.history and (args.quick or args.out):
        return "--quick and --out run checks; --history shows stored runs: not both"
    # Said before the checks run (a minute with the devices'), not after.
    blocked = None if args.out is None else why_no_folder(args.out)
    if blocked is not None:
        return f"--out {args.out}: {blocked}"
    return None


def report(args: argparse.Namespace, client: DaemonClient) -> int:
    """Run the checks in the daemon, have it make and sign the report, and write both files."""
    answer = client.checked_json(
        "POST",
        "/api/v1/diagnostics/report",
        {"quick": args.quick},
        timeout_s=RUN_TIMEOUT_S,
        shape="DiagnosticsReport",
    )
    result = answer["statement"]["run"]
    print(json.dumps(result, indent=2, ensure_ascii=False) if args.json else "\n".join(run_lines(result)))
    try:
        paths = write_report(answer, args.out)
    except OSError as exc:
        print(f"kitctl diag: {args.out}: cannot write the report: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if answer.get("signature") is None:
        print(f"kitctl diag: the report is NOT signed: {answer.get('unsigned')}", file=sys.stderr)
    for path in paths:
        print(f"report: {path}", file=sys.stderr if args.json else sys.stdout)
    return 1 if result["status"] == "failed" or answer.get("signature") is None else 0


def run(args: argparse.Namespace) -> int:
    problem = _usage_problem(args)
    if problem is not None:
        print(f"kitctl diag: {problem}", file=sys.stderr)
        return 2
    if args.verify is not None:
        return verify(args)
    client = client_from_args(args)
    try:
        if args.out is not None:
            return report(args, client)
        if args.history:
            query = {"limit": args.limit or DEFAULT_HISTORY, **({"check": args.check} if args.check else {})}
            answer = _ask(
                client,
                f"/api/v1/diagnostics/history?{urlencode(query)}",
                "CheckHistory" if args.check else "DiagnosticsRuns",
            )
            print(
                json.dumps(answer, indent=2, ensure_ascii=False)
                if args.json
                else "\n".join(history_lines(answer))
            )
            return 0
        result = _ask(client, f"/api/v1/diagnostics?quick={int(args.quick)}", "DiagnosticsRun")
    except (DaemonError, DaemonUnreachable) as exc:
        print(f"kitctl diag: {exc}", file=sys.stderr)
        # The daemon refused what was asked (an unknown check, a limit out of range): a usage
        # error (2), not a check that failed or a daemon away (1).
        return 2 if isinstance(exc, DaemonError) and exc.status == 400 else 1
    print(json.dumps(result, indent=2, ensure_ascii=False) if args.json else "\n".join(run_lines(result)))
    return 1 if result["status"] == "failed" else 0
