"""Aliyun's word on a review, wherever it came from, and what it does to a shop. Pure.

A **review report** says what Aliyun's review made of a qualification, a signature or a
template. Reports come from Aliyun's pushes to the receipts endpoint (``SignSmsReport``,
https://help.aliyun.com/document_detail/120998.html; ``TemplateSmsReport``,
https://help.aliyun.com/document_detail/120999.html: a JSON array holding one report,
``sign_status`` / ``template_status`` ``approving|approved|rejected`` with ``reason``) and from
the worker's poller, which asks Aliyun for what is still in review when no push came. Either way
they are records of ``notify.sms.reviews`` (keyed by what they are about), and the reviews lane
applies them: the shop holding it follows the review (:func:`apply_report`), the change is saved
with its history, and the seller is told (``sms_review.finished``, the scene
``seller_sms_review_finished``, off until the shop turns it on). A report about something no
shop has in review changes nothing: a late or repeated report is harmless.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

import orjson
from pydantic import Field, ValidationError

from streams.core.catalog import Frozen
from streams.core.errors import MallNotifyError
from streams.core.events import envelope
from streams.core.shops import QualificationState, ReviewStatus, ShopRules
from streams.core.sms_onboarding import follow_qualification
from streams.core.sms_signatures import follow_signature, follow_sms_template

REVIEW_FINISHED_TYPE = "sms_review.finished"
ReportKind = Literal["qualification", "signature", "template"]
ReportSource = Literal["SignSmsReport", "TemplateSmsReport", "poll"]
PUSH_STATES: dict[str, ReviewStatus] = {
    "approving": "reviewing",
    "approved": "approved",
    "rejected": "rejected",
}
"""SignSmsReport's sign_status, TemplateSmsReport's template_status"""
KIND_NAMES = {"qualification": "短信资质", "signature": "短信签名", "template": "短信模板"}
OUTCOME_NAMES = {"approved": "通过", "rejected": "未通过", "incomplete": "待补充", "withdrawn": "已撤回"}


class ReportRefused(MallNotifyError):
    """A body that is not Aliyun's SignSmsReport / TemplateSmsReport."""


class ReviewReport(Frozen):
    kind: ReportKind
    name: str = Field(
        min_length=1, max_length=100, description="signature name, template code, qualification name"
    )
    status: QualificationState
    reason: str = Field(default="", max_length=500)
    source: ReportSource
    order_id: str = Field(default="", max_length=64)

    def key(self) -> bytes:
        return f"{self.kind}/{self.name}".encode()

    def value(self) -> bytes:
        return self.model_dump_json().encode()


def parse_push(body: bytes, source: Literal["SignSmsReport", "TemplateSmsReport"]) -> list[ReviewReport]:
    """Aliyun's push of review results: a JSON array of reports (one per request, says Aliyun)."""
    try:
        reports = orjson.loads(body)
        if not isinstance(reports, list) or not reports:
            raise ValueError("not a JSON array of reports")
        return [_pushed(report, source) for report in reports]
    except (orjson.JSONDecodeError, ValueError, TypeError, KeyError, ValidationError) as exc:
        raise ReportRefused(f"not Aliyun's {source} ({str(exc).splitlines()[0][:200]})") from None


def _pushed(report: object, source: Literal["SignSmsReport", "TemplateSmsReport"]) -> ReviewReport:
    if not isinstance(report, dict):
        raise ValueError("each report is a JSON object")
    sign = source == "SignSmsReport"
    name = report["sign_name" if sign else "template_code"]
    status = PUSH_STATES.get(str(report["sign_status" if sign else "template_status"]))
    if not isinstance(name, str) or status is None:
        raise ValueError(
            f"{'sign_name' if sign else 'template_code'} and a status approving|approved|rejected"
        )
    order_id = report.get("orderId") or report.get("order_id") or ""
    return ReviewReport(
        kind="signature" if sign else "template",
        name=name,
        status=status,
        reason=str(report.get("reason") or "") if status == "rejected" else "",
        source=source,
        order_id=str(order_id)[:64],
    )


def parse_report(value: bytes | None) -> ReviewReport:
    """A record of the reviews topic (ValidationError when it is not one)."""
    return ReviewReport.model_validate_json(value or b"")


def in_review(shop: ShopRules) -> list[tuple[ReportKind, str]]:
    """What of the shop Aliyun is still reviewing."""
    account = shop.sms
    found: list[tuple[ReportKind, str]] = []
    if (
        account is not None
        and account.qualification is not None
        and account.qualification.status == "reviewing"
    ):
        found.append(("qualification", account.qualification.name))
    found += [
        ("signature", s.name) for s in (account.signatures if account else []) if s.status == "submitted"
    ]
    found += [("template", t.template_code) for t in shop.sms_templates if t.status == "reviewing"]
    return found


def holder(shops: Iterable[ShopRules], report: ReviewReport) -> ShopRules | None:
    """The shop that has what the report is about in review."""
    wanted = (report.kind, report.name)
    return next((shop for shop in shops if wanted in in_review(shop)), None)


def apply_report(shop: ShopRules, report: ReviewReport, now: datetime) -> ShopRules:
    """The shop after the report (itself when the report changes nothing: still in review)."""
    if report.kind == "qualification":
        return follow_qualification(shop, report.status, report.reason, now)
    status: ReviewStatus = report.status if report.status in ("approved", "rejected") else "reviewing"
    if report.status in ("incomplete", "withdrawn"):
        status = "rejected"
    if report.kind == "signature":
        return follow_signature(shop, report.name, status, report.reason, now)
    return follow_sms_template(shop, report.name, status, report.reason)


def action(report: ReviewReport) -> str:
    """The settings history's line for a change a report made."""
    return f"Aliyun: {report.kind} {report.name} {report.status} ({report.source})"


def finished_event(shop: ShopRules, report: ReviewReport, now: datetime) -> tuple[str, bytes]:
    """The event telling the seller how Aliyun's review ended (its id, its value); one per
    review's end, however often the report comes."""
    event_id = f"sms-review-{shop.shop_id}-{report.kind}-{report.name}-{report.status}"
    seller = {"user_id": f"shop-{shop.shop_id}-owner"} | (
        {"oa_openid": shop.seller_openid} if shop.seller_openid else {}
    )
    data = {
        "seller": seller,
        "kind": report.kind,
        "subject": f"{KIND_NAMES[report.kind]}{report.name}"[:20],
        "result": OUTCOME_NAMES.get(report.status, report.status),
        "reason": (report.reason or "无")[:20],
        "reviewed_at": now,
    }
    return event_id, envelope(event_id, REVIEW_FINISHED_TYPE, "/mall-notify/sms", shop.shop_id, data, now)
