"""The kit's signed diagnostics report: what a vendor checks before trusting one.

Its one job: name the report's statement kind and check a report — a signed statement
(kitformats.statements) made by the kit whose certificate the vendor holds, of this kind, for
the kit its certificate names — each failure one :class:`ReportRejected` sentence. The kit
makes and signs the report in its daemon (kitd.services.diagnostics_report), where its key is.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509

from kitformats.cms import SignatureInvalid
from kitformats.errors import KitError
from kitformats.signing import KIT_CN_PREFIX, common_name
from kitformats.statements import verify_statement

REPORT_KIND = "kitd-diagnostics-report/1"


class ReportRejected(KitError):
    """A diagnostics report fails a check; the message says which and why."""


def check_report(document: Any, kit: x509.Certificate) -> dict[str, Any]:
    """The report's statement, once its signature is the ``kit`` certificate's own (pinned: no
    chain is needed) and it is a diagnostics report of that kit."""
    if isinstance(document, dict) and document.get("signature") is None and "unsigned" in document:
        raise ReportRejected(f"the report is not signed: the kit could not sign it ({document['unsigned']})")
    try:
        statement, signer = verify_statement(document, [], pinned=kit)
    except SignatureInvalid as exc:
        raise ReportRejected(f"signature: {exc}") from None
    if statement.get("kind") != REPORT_KIND:
        raise ReportRejected(f"kind is {statement.get('kind')!r}, not {REPORT_KIND}")
    if statement.get("kit_id") != common_name(signer)[len(KIT_CN_PREFIX) :]:
        raise ReportRejected(f"kit_id {statement.get('kit_id')!r} is not the signing kit's")
    return statement
