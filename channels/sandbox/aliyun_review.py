"""Aliyun SMS's qualification, authorization letter, signature and template actions as Aliyun's
API reference documents them (the request parameters, which are required, their limits, the
answers), independently of the project's client. Pages (help.aliyun.com/zh/sms/developer-reference/):

- ``RequiredPhoneCode`` / ``SubmitSmsQualification`` / ``QuerySmsQualificationRecord``:
  api-dysmsapi-2017-05-25-submitsmsqualification, -querysmsqualificationrecord. A qualification
  needs the code sent to its administrator's phone; ``UseBySelf=false`` (third party) needs the
  business licence (``BusinessLicensePics``, a JSON array of ``{Type, LicensePic}``). States
  ``INIT`` → ``PASS`` / ``NOT_PASS``.
- ``CreateSmsAuthorizationLetter``: -createsmsauthorizationletter. ``SignList`` is a JSON array
  of at most 100 names; the letter's id is ``Data``.
- ``CreateSmsSign`` / ``GetSmsSign`` / ``QuerySmsSignList``: -createsmssign, -getsmssign,
  -querysmssignlist. ``QualificationId`` (an approved one) and ``SignSource`` are required;
  ``ThirdParty=true`` needs ``AuthorizationLetterId`` of a letter naming the signature with the
  qualification's credit code. ``SignStatus`` 0 reviewing, 1 approved, 2 rejected
  (``AuditInfo.RejectInfo``), 10 cancelled; lists say ``AUDIT_STATE_INIT|PASS|NOT_PASS|CANCEL``.
- ``CreateSmsTemplate`` / ``GetSmsTemplate`` / ``QuerySmsTemplateList``: -createsmstemplate,
  -getsmstemplate, -querysmstemplatelist. ``RelatedSignName`` (an approved signature) is
  required for types 0, 1, 2; ``TemplateRule`` (a JSON object, one documented attribute per
  ``${variable}``, https://help.aliyun.com/document_detail/2806243.html) when the content has
  variables; a verification template has one variable.
- ``AddSmsSign``, ``QuerySmsSign``, ``AddSmsTemplate``, ``QuerySmsTemplate``: taken offline,
  answered ``isv.INTERFACE_OFFLINE`` (申请短信模板: "原 AddSmsTemplate 接口已下线").

Reviews end ``review.after_seconds`` after the submission: approved, or rejected when the text
holds a ``review.refused_words`` entry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from channels.sandbox.state import AliyunState, Letter, Qualification, SeedSign, SeedSmsTemplate

STATUS_CODES = {"reviewing": 0, "approved": 1, "rejected": 2}
AUDIT_STATES = {
    "reviewing": "AUDIT_STATE_INIT",
    "approved": "AUDIT_STATE_PASS",
    "rejected": "AUDIT_STATE_NOT_PASS",
}
ID_TYPES = {
    "identityCard",
    "passport",
    "homeReturnPermit",
    "TaiwanCompatriotPermit",
    "residencePermit",
    "other",
}
LICENSE_TYPES = {"socialCreditLicense", "businessLicense", "signLegalLicense", "otherLicense"}
RULES = {"numberCaptcha", "characterWithNumber2", "phone_number2", "time", "money", "name", "other_number2"}
"""TemplateRule attributes document 2806243 lists for verification codes and notices"""
CAPTCHA_RULES = {"numberCaptcha", "characterWithNumber2"}
QUALIFICATION_REQUIRED = (
    "QualificationName",
    "UseBySelf",
    "WhetherShare",
    "CompanyName",
    "CompanyType",
    "OrganizationCode",
    "BussinessLicenseExpDate",
    "LegalPersonName",
    "LegalPersonIDCardType",
    "LegalPersonIDCardNo",
    "LegalPersonIdCardEffTime",
    "AdminName",
    "AdminIDCardType",
    "AdminIDCardNo",
    "AdminIDCardExpDate",
    "AdminIDCardFrontFace",
    "AdminIDCardPic",
    "AdminPhoneNo",
    "CertifyCode",
)
LETTER_REQUIRED = (
    "Authorization",
    "AuthorizationLetterExpDate",
    "AuthorizationLetterName",
    "AuthorizationLetterPic",
    "OrganizationCode",
    "ProxyAuthorization",
    "SignList",
)
_PHONE = re.compile(r"^(?:\+86|0086|86|\+)?(1\d{10})$")
_PERIOD = re.compile(r"^\d{4}-\d{2}-\d{2}~\d{4}-\d{2}-\d{2}$")
_NAME = re.compile(r"^[A-Za-z0-9\u4e00-\u9fff]*[A-Za-z\u4e00-\u9fff][A-Za-z0-9\u4e00-\u9fff]*$")
_SIGN = re.compile(r"^[A-Za-z0-9\u4e00-\u9fff]{2,12}$")
_VARIABLE = re.compile(r"\$\{(\w+)\}")
Answer = dict[str, Any]


def _invalid(message: str) -> Answer:
    return {"Code": "isv.INVALID_PARAMETERS", "Message": message}


def _ok(**fields: Any) -> Answer:
    return {"Code": "OK", "Message": "OK", **fields}


def _missing(query: Mapping[str, str], names: tuple[str, ...]) -> Answer | None:
    absent = [name for name in names if not query.get(name)]
    return _invalid(f"Missing required parameters: {', '.join(absent)}") if absent else None


def _flag(value: str | None) -> bool | None:
    """A boolean parameter as the SDK sends it ('true' / 'True', 'false' / 'False')."""
    return {"true": True, "false": False}.get((value or "").lower())


def _json(value: str | None) -> Any:
    try:
        return orjson.loads(value or "")
    except orjson.JSONDecodeError:
        return None


def offline(_: AliyunState, __: Mapping[str, str], ___: float) -> Answer:
    return {"Code": "isv.INTERFACE_OFFLINE", "Message": "The interface is offline, use its successor."}


def required_phone_code(state: AliyunState, query: Mapping[str, str], _: float) -> Answer:
    match = _PHONE.match(query.get("PhoneNo", ""))
    if match is None:
        return _invalid("PhoneNo is not a mobile number.")
    state.phone_codes[match[1]] = f"{next(state.ids) % 1_000_000:06d}"
    return _ok()


def _qualification_problem(state: AliyunState, query: Mapping[str, str]) -> str | None:
    name = query["QualificationName"]
    if len(name) > 100 or not _NAME.match(name):
        return "QualificationName: Chinese, letters and digits, not digits only, at most 100."
    if any(q.name == name for q in state.qualifications.values()):
        return "QualificationName: a qualification of that name exists."
    use_by_self = _flag(query.get("UseBySelf"))
    if use_by_self is None or _flag(query.get("WhetherShare")) is None:
        return "UseBySelf and WhetherShare: true or false."
    if query["CompanyType"] not in {"COMPANY", "NON_PROFIT_ORGANIZATION"}:
        return "CompanyType: COMPANY or NON_PROFIT_ORGANIZATION."
    periods = ("BussinessLicenseExpDate", "LegalPersonIdCardEffTime", "AdminIDCardExpDate")
    if not all(_PERIOD.match(query[name]) for name in periods):
        return "Validity periods: YYYY-MM-DD~YYYY-MM-DD."
    if {query["LegalPersonIDCardType"], query["AdminIDCardType"]} - ID_TYPES:
        return "ID card type: identityCard, passport, homeReturnPermit, ..."
    return _papers_problem(state, query, use_by_self)


def _papers_problem(state: AliyunState, query: Mapping[str, str], use_by_self: bool) -> str | None:
    """The business licence (third-party use) and the administrator's phone code."""
    pics = _json(query.get("BusinessLicensePics"))
    if not use_by_self and not (
        isinstance(pics, list)
        and pics
        and all(isinstance(p, dict) and p.get("Type") in LICENSE_TYPES and p.get("LicensePic") for p in pics)
    ):
        return "BusinessLicensePics: required for third-party use, [{Type, LicensePic}]."
    phone = _PHONE.match(query["AdminPhoneNo"])
    if phone is None or state.phone_codes.get(phone[1]) != query["CertifyCode"]:
        return "CertifyCode: not the code RequiredPhoneCode sent to AdminPhoneNo."
    return None


def submit_qualification(state: AliyunState, query: Mapping[str, str], now: float) -> Answer:
    missing = _missing(query, QUALIFICATION_REQUIRED)
    if missing is not None:
        return missing
    problem = _qualification_problem(state, query)
    if problem is not None:
        return _invalid(problem)
    group_id = next(state.ids)
    state.qualifications[group_id] = Qualification(
        group_id=group_id,
        work_order_id=next(state.ids),
        name=query["QualificationName"],
        company_name=query["CompanyName"],
        organization_code=query["OrganizationCode"],
        use_by_self=bool(_flag(query["UseBySelf"])),
        submitted_at=now,
    )
    state.phone_codes = {p: c for p, c in state.phone_codes.items() if c != query["CertifyCode"]}  # used once
    return _ok(Data=str(group_id), Success=True)


def _current_qualification(state: AliyunState, group_id: int, now: float) -> Qualification | None:
    qualification = state.qualifications.get(group_id)
    if qualification is None or qualification.status != "INIT":
        return qualification
    review = state.seed.review
    if now - qualification.submitted_at < review.after_seconds:
        return qualification
    refused = next((word for word in review.refused_words if word in qualification.company_name), None)
    update = (
        {"status": "NOT_PASS", "remark": f"企业名称不符合规范：含有“{refused}”"}
        if refused
        else {"status": "PASS"}
    )
    qualification = state.qualifications[group_id] = qualification.model_copy(update=update)
    return qualification


def query_qualifications(state: AliyunState, query: Mapping[str, str], now: float) -> Answer:
    try:
        page, size = int(query.get("PageNo") or 1), int(query.get("PageSize") or 20)
    except ValueError:
        return _invalid("PageNo and PageSize are numbers.")
    if not 1 <= size <= 50 or page < 1:
        return _invalid("PageSize: 1 to 50.")
    found = [
        q
        for q in (_current_qualification(state, gid, now) for gid in list(state.qualifications))
        if q is not None
        and query.get("QualificationGroupName") in (None, "", q.name)
        and query.get("State") in (None, "", q.status)
    ]
    listed = [
        {
            "GroupId": q.group_id,
            "QualificationGroupName": q.name,
            "CompanyName": q.company_name,
            "WorkOrderId": q.work_order_id,
            "StateName": q.status,
            "AuditRemark": q.remark,
            "UseBySelf": q.use_by_self,
        }
        for q in found[(page - 1) * size : page * size]
    ]
    return _ok(Data={"List": listed, "PageNo": page, "PageSize": size, "Total": len(found)}, Success=True)


def create_letter(state: AliyunState, query: Mapping[str, str], _: float) -> Answer:
    missing = _missing(query, LETTER_REQUIRED)
    if missing is not None:
        return missing
    signs = _json(query["SignList"])
    if not (isinstance(signs, list) and 1 <= len(signs) <= 100 and all(_SIGN.match(str(s)) for s in signs)):
        return _invalid("SignList: a JSON array of 1 to 100 signature names of 2 to 12 characters.")
    if not _PERIOD.match(query["AuthorizationLetterExpDate"]):
        return _invalid("AuthorizationLetterExpDate: YYYY-MM-DD~YYYY-MM-DD.")
    if any(letter.name == query["AuthorizationLetterName"] for letter in state.letters.values()):
        return _invalid("AuthorizationLetterName: a letter of that name exists.")
    letter_id = next(state.ids)
    state.letters[letter_id] = Letter(
        letter_id=letter_id,
        name=query["AuthorizationLetterName"],
        company=query["Authorization"],
        organization_code=query["OrganizationCode"],
        signs=[str(s) for s in signs],
        valid_until=query["AuthorizationLetterExpDate"].split("~")[1],
    )
    return _ok(Data=str(letter_id), Success=True)


def _sign_problem(state: AliyunState, query: Mapping[str, str], now: float) -> str | None:
    name = query["SignName"]
    if not _SIGN.match(name):
        return "SignName: 2 to 12 characters, Chinese, letters or digits."
    if name in state.signs:
        return "SignName: the signature already exists."
    if query["SignSource"] not in {"0", "2", "5"}:
        return "SignSource: 0, 2 or 5."
    if query["SignSource"] == "2" and not query.get("AppIcpRecordId"):
        return "AppIcpRecordId: required when SignSource is 2."
    if query["SignSource"] == "5" and not query.get("TrademarkId"):
        return "TrademarkId: required when SignSource is 5."
    return _sign_papers_problem(state, query, now)


def _sign_papers_problem(state: AliyunState, query: Mapping[str, str], now: float) -> str | None:
    """The qualification a signature names, and for a third party's, the letter naming it."""
    name = query["SignName"]
    qualification = _current_qualification(state, int(query["QualificationId"] or 0), now)
    if qualification is None or qualification.status != "PASS":
        return "QualificationId: not an approved qualification of this account."
    third_party = bool(_flag(query.get("ThirdParty")))
    if third_party == qualification.use_by_self:
        return "ThirdParty: a third-party signature needs a qualification for third-party use."
    if third_party:
        letter = state.letters.get(int(query.get("AuthorizationLetterId") or 0))
        if letter is None or name not in letter.signs:
            return "AuthorizationLetterId: required for third-party use, a letter naming the signature."
        if letter.organization_code != qualification.organization_code:
            return "AuthorizationLetterId: the letter's credit code is not the qualification's."
    return None


def create_sign(state: AliyunState, query: Mapping[str, str], now: float) -> Answer:
    missing = _missing(query, ("SignName", "SignSource", "QualificationId"))
    if missing is not None:
        return missing
    if not query["QualificationId"].isdigit():
        return _invalid("QualificationId: a number.")
    problem = _sign_problem(state, query, now)
    if problem is not None:
        return _invalid(problem)
    order_id = str(next(state.ids))
    state.signs[query["SignName"]] = SeedSign(
        name=query["SignName"],
        status="reviewing",
        submitted_at=now,
        order_id=order_id,
        qualification_id=int(query["QualificationId"]),
        letter_id=int(query.get("AuthorizationLetterId") or 0) or None,
        third_party=bool(_flag(query.get("ThirdParty"))),
    )
    return _ok(SignName=query["SignName"], OrderId=order_id)


def reviewed(
    state: AliyunState, status: str, text: str, submitted_at: float | None, now: float
) -> tuple[str, str]:
    """Aliyun's review as the sandbox plays it: still reviewing for a while, then approved, or
    rejected when the text holds a refused word."""
    review = state.seed.review
    if status != "reviewing" or submitted_at is None or now - submitted_at < review.after_seconds:
        return status, ""
    refused = next((word for word in review.refused_words if word in text), None)
    if refused is not None:
        return "rejected", f"内容不符合规范：含有“{refused}”"
    return "approved", ""


def current_sign(state: AliyunState, name: str, now: float) -> SeedSign | None:
    """A signature as Aliyun's review has left it by ``now``."""
    sign = state.signs.get(name)
    if sign is None:
        return None
    status, reason = reviewed(state, sign.status, sign.name, sign.submitted_at, now)
    if status != sign.status:
        sign = state.signs[name] = sign.model_copy(update={"status": status, "reason": reason})
    return sign


def current_template(state: AliyunState, code: str, now: float) -> SeedSmsTemplate | None:
    """A template as Aliyun's review has left it by ``now``."""
    template = state.templates.get(code)
    if template is None:
        return None
    text = template.name + template.content
    status, reason = reviewed(state, template.status, text, template.submitted_at, now)
    if status != template.status:
        template = state.templates[code] = template.model_copy(update={"status": status, "reason": reason})
    return template


def get_sign(state: AliyunState, query: Mapping[str, str], now: float) -> Answer:
    sign = current_sign(state, query.get("SignName", ""), now)
    if sign is None:
        return {"Code": "isv.SMS_SIGN_ILLEGAL", "Message": "The signature does not exist."}
    return _ok(
        SignName=sign.name,
        SignStatus=STATUS_CODES[sign.status],
        AuditInfo={"RejectInfo": sign.reason, "AuditDate": ""} if sign.status == "rejected" else {},
        OrderId=sign.order_id,
        QualificationId=sign.qualification_id,
        AuthorizationLetterId=sign.letter_id,
        ThirdParty=sign.third_party,
    )


def _page(query: Mapping[str, str]) -> tuple[int, int] | None:
    try:
        page, size = int(query.get("PageIndex") or 1), int(query.get("PageSize") or 10)
    except ValueError:
        return None
    return (page, size) if page >= 1 and 1 <= size <= 50 else None


def _reason(status: str, reason: str) -> dict[str, str]:
    return {"RejectInfo": reason, "RejectSubInfo": "", "RejectDate": ""} if status == "rejected" else {}


def list_signs(state: AliyunState, query: Mapping[str, str], now: float) -> Answer:
    paging = _page(query)
    if paging is None:
        return _invalid("PageIndex from 1, PageSize 1 to 50.")
    page, size = paging
    signs = [s for s in (current_sign(state, name, now) for name in list(state.signs)) if s is not None]
    listed = [
        {
            "SignName": s.name,
            "AuditStatus": AUDIT_STATES[s.status],
            "Reason": _reason(s.status, s.reason),
            "OrderId": s.order_id,
            "BusinessType": "通用",
            "AuthorizationLetterId": s.letter_id,
        }
        for s in signs[(page - 1) * size : page * size]
    ]
    return _ok(SmsSignList=listed, TotalCount=len(signs), CurrentPage=page, PageSize=size)


def _template_problem(state: AliyunState, query: Mapping[str, str], now: float) -> str | None:
    content, kind = query["TemplateContent"], query["TemplateType"]
    if len(query["TemplateName"]) > 30 or len(content) > 500:
        return "TemplateName at most 30 characters, TemplateContent at most 500."
    if kind not in {"0", "1", "2", "3"}:
        return "TemplateType: 0, 1, 2 or 3."
    if kind in {"0", "1", "2"}:
        sign = current_sign(state, query.get("RelatedSignName", ""), now)
        if sign is None or sign.status != "approved":
            return "RelatedSignName: required, an approved signature of this account."
    variables = _VARIABLE.findall(content)
    if not variables:
        return None
    rule = _json(query.get("TemplateRule"))
    if not isinstance(rule, dict) or set(rule) != set(variables) or set(rule.values()) - RULES:
        return "TemplateRule: a JSON object with one documented attribute per ${variable}."
    if kind == "0" and (len(set(variables)) != 1 or set(rule.values()) - CAPTCHA_RULES):
        return "A verification code template has one variable: numberCaptcha or characterWithNumber2."
    return None


def create_template(state: AliyunState, query: Mapping[str, str], now: float) -> Answer:
    missing = _missing(query, ("TemplateName", "TemplateContent", "TemplateType"))
    if missing is not None:
        return missing
    problem = _template_problem(state, query, now)
    if problem is not None:
        return _invalid(problem)
    code, order_id = f"SMS_{480000000 + len(state.templates) + 1}", str(next(state.ids))
    state.templates[code] = SeedSmsTemplate(
        code=code,
        name=query["TemplateName"],
        content=query["TemplateContent"],
        status="reviewing",
        submitted_at=now,
        order_id=order_id,
        template_type=int(query["TemplateType"]),
        related_sign=query.get("RelatedSignName", ""),
    )
    return _ok(TemplateCode=code, TemplateName=query["TemplateName"], OrderId=order_id)


def get_template(state: AliyunState, query: Mapping[str, str], now: float) -> Answer:
    template = current_template(state, query.get("TemplateCode", ""), now)
    if template is None:
        return {"Code": "isv.SMS_TEMPLATE_ILLEGAL", "Message": "The template does not exist."}
    rejected = template.status == "rejected"
    return _ok(
        TemplateCode=template.code,
        TemplateName=template.name,
        TemplateContent=template.content,
        TemplateStatus=str(STATUS_CODES[template.status]),
        TemplateType=str(template.template_type),
        AuditInfo={"RejectInfo": template.reason, "AuditDate": ""} if rejected else {},
        RelatedSignName=template.related_sign,
        OrderId=template.order_id,
    )


def list_templates(state: AliyunState, query: Mapping[str, str], now: float) -> Answer:
    paging = _page(query)
    if paging is None:
        return _invalid("PageIndex from 1, PageSize 1 to 50.")
    page, size = paging
    found = [
        t for t in (current_template(state, code, now) for code in list(state.templates)) if t is not None
    ]
    listed = [
        {
            "TemplateCode": t.code,
            "TemplateName": t.name,
            "TemplateContent": t.content,
            "AuditStatus": AUDIT_STATES[t.status],
            "Reason": _reason(t.status, t.reason),
            "OrderId": t.order_id,
            "OuterTemplateType": t.template_type,
        }
        for t in found[(page - 1) * size : page * size]
    ]
    return _ok(SmsTemplateList=listed, TotalCount=len(found), CurrentPage=page, PageSize=size)


ACTIONS = {
    "RequiredPhoneCode": required_phone_code,
    "SubmitSmsQualification": submit_qualification,
    "QuerySmsQualificationRecord": query_qualifications,
    "CreateSmsAuthorizationLetter": create_letter,
    "CreateSmsSign": create_sign,
    "GetSmsSign": get_sign,
    "QuerySmsSignList": list_signs,
    "CreateSmsTemplate": create_template,
    "GetSmsTemplate": get_template,
    "QuerySmsTemplateList": list_templates,
    "AddSmsSign": offline,
    "QuerySmsSign": offline,
    "AddSmsTemplate": offline,
    "QuerySmsTemplate": offline,
}
