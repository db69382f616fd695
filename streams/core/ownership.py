"""What in a shop's settings is the platform's record of the shop, not the shop's to change. Pure.

The platform sets the shop's Official Account and Mini Program appids, and the reviews decide its
SMS signatures and templates (``mall-notify sms ...`` and the SMS endpoints of the admin API). A
shop's own save (a shop token) may turn scenes on and off, pick templates and texts, choose its
active signature among the approved ones and switch or drop its SMS templates, but it cannot change
the record: a save that would is refused (403), naming what it tried to change.
"""

from __future__ import annotations

from streams.core.shops import ShopRules, SmsTemplate


def _template_record(template: SmsTemplate) -> tuple[str, str, str, str, str | None]:
    """What the review fixed about a template (everything but ``enabled``)."""
    return template.name, template.scene, template.content, template.status, template.reason


def record_changes(before: ShopRules | None, after: ShopRules) -> list[str]:
    """The parts of the platform's record ``after`` changes, one sentence each."""
    changes = []
    for field in ("wechat_oa", "wechat_mp"):
        old, new = (getattr(before, field) if before else None), getattr(after, field)
        if old != new:
            changes.append(f"{field}: the shop's appid is set by the platform")
    old_signatures = before.sms.signatures if before and before.sms else []
    new_signatures = after.sms.signatures if after.sms else []
    if old_signatures != new_signatures:
        changes.append("sms.signatures: signatures change only through their review (sms/signatures)")
    for field in ("qualification", "letter"):
        old_record = getattr(before.sms, field) if before and before.sms else None
        if old_record != (getattr(after.sms, field) if after.sms else None):
            changes.append(f"sms.{field}: the platform submits it to Aliyun (sms/{field})")
    reviewed = {t.template_code: _template_record(t) for t in before.sms_templates} if before else {}
    for template in after.sms_templates:
        if reviewed.get(template.template_code) != _template_record(template):
            changes.append(
                f"sms_templates: {template.template_code} is not this shop's template as Aliyun reviewed it "
                "(submit new templates through sms/templates)"
            )
    return changes
