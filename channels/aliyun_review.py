"""The platform's applications to Aliyun SMS for its merchants, through the official SDK, as Aliyun
documents them since its signature and template API change (关于短信服务更新签名&模板接口的公告):

- a **qualification** (资质) of the merchant's company, for third-party use (他用):
  ``RequiredPhoneCode`` sends a code to the company's SMS administrator, ``SubmitSmsQualification``
  submits it with that code, ``QuerySmsQualificationRecord`` says what the review made of it
  (https://help.aliyun.com/zh/sms/developer-reference/api-dysmsapi-2017-05-25-submitsmsqualification,
  .../api-dysmsapi-2017-05-25-querysmsqualificationrecord);
- an **authorization letter** (授权委托书) by which the merchant lets the platform sign with its
  names: ``CreateSmsAuthorizationLetter``
  (.../api-dysmsapi-2017-05-25-createsmsauthorizationletter);
- **signatures**: ``CreateSmsSign`` names the qualification and the letter (``ThirdParty``), then
  ``GetSmsSign`` / ``QuerySmsSignList`` (.../api-dysmsapi-2017-05-25-createsmssign, -getsmssign,
  -querysmssignlist);
- **templates**: ``CreateSmsTemplate`` names a related approved signature and a rule per variable
  (``TemplateRule``, https://help.aliyun.com/document_detail/2806243.html), then
  ``GetSmsTemplate`` / ``QuerySmsTemplateList``.

The old ``AddSmsSign`` / ``QuerySmsSign`` / ``AddSmsTemplate`` / ``QuerySmsTemplate`` are not
called (offline: ``isv.INTERFACE_OFFLINE``). What a merchant's qualification carries about people
(ID numbers, the administrator's phone, the phone code) goes to Aliyun and nowhere else: it is
held as :class:`~pydantic.SecretStr`, so it never prints, logs or serialises.
Every failure is a :class:`~channels.aliyun_sms.AliyunCallFailed`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from alibabacloud_dysmsapi20170525 import models as sms_models
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from channels.aliyun_sms import AliyunKeys, AliyunSmsConfig, SdkClient

ReviewState = Literal["reviewing", "approved", "rejected"]
QualificationState = Literal["reviewing", "approved", "rejected", "incomplete", "withdrawn"]
QUALIFICATION_STATES: dict[str, QualificationState] = {
    "INIT": "reviewing",
    "PASS": "approved",
    "NOT_PASS": "rejected",
    "NOT_FINISH": "incomplete",
    "CANCEL": "withdrawn",
}
"""QuerySmsQualificationRecord's StateName"""
STATUS_CODES: dict[int, ReviewState] = {0: "reviewing", 1: "approved", 2: "rejected", 10: "rejected"}
"""GetSmsSign's SignStatus and GetSmsTemplate's TemplateStatus (10: the review was cancelled)"""
AUDIT_STATES: dict[str, ReviewState] = {
    "AUDIT_STATE_INIT": "reviewing",
    "AUDIT_STATE_PASS": "approved",
    "AUDIT_STATE_NOT_PASS": "rejected",
    "AUDIT_STATE_CANCEL": "rejected",
    "AUDIT_SATE_CANCEL": "rejected",  # QuerySmsTemplateList documents it spelled so
}
"""QuerySmsSignList's and QuerySmsTemplateList's AuditStatus"""
CANCELLED = "the review was cancelled (取消审核)"
TEMPLATE_TYPES = {"verification_code": 0, "notice": 1, "marketing": 2}
"""CreateSmsTemplate's TemplateType: 0 verification code, 1 notice, 2 promotion"""
PAGE_SIZE = 50
"""QuerySmsSignList / QuerySmsTemplateList: 1 to 50 a page"""
SIGN_SOURCE_COMPANY = 0
"""CreateSmsSign's SignSource: the full name or short name of a company (recommended)"""
SIGN_TYPE_GENERAL = 1
"""CreateSmsSign's SignType: general-purpose, for codes and notices alike (the default)"""

DateRange = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}~\d{4}-\d{2}-\d{2}$")]
"""YYYY-MM-DD~YYYY-MM-DD (2099-12-31 for no end)"""
OssKey = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_./-]+$")]
"""a file uploaded to Aliyun's OSS for the review (its path: no Chinese, no special characters)"""
IdType = Literal[
    "identityCard", "passport", "homeReturnPermit", "TaiwanCompatriotPermit", "residencePermit", "other"
]
CompanyName = Annotated[str, Field(min_length=2, max_length=150, pattern=r"^[^!-'*-/:-@\[-`{-~]*[^\d\s]")]
"""no symbols but ·【】（）() and spaces, not digits only"""
SignName = Annotated[str, Field(min_length=2, max_length=12, pattern=r"^[A-Za-z0-9\u4e00-\u9fff]+$")]


class _Form(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class License(_Form):
    type: Literal["socialCreditLicense", "businessLicense", "signLegalLicense", "otherLicense"] = (
        "businessLicense"
    )
    pic: OssKey


class QualificationForm(_Form):
    """What ``SubmitSmsQualification`` needs of a merchant's company, for third-party use."""

    qualification_name: str = Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9\u4e00-\u9fff]*[A-Za-z\u4e00-\u9fff][A-Za-z0-9\u4e00-\u9fff]*$",
    )
    company_name: CompanyName
    company_type: Literal["COMPANY", "NON_PROFIT_ORGANIZATION"] = "COMPANY"
    organization_code: str = Field(min_length=15, max_length=150, pattern=r"^[0-9A-Z]+$")
    business_licenses: list[License] = Field(min_length=1, max_length=5)
    business_license_valid: DateRange
    legal_person_name: str = Field(min_length=1, max_length=50)
    legal_person_id_type: IdType = "identityCard"
    legal_person_id_no: SecretStr
    legal_person_id_valid: DateRange
    admin_name: str = Field(min_length=1, max_length=50)
    admin_id_type: IdType = "identityCard"
    admin_id_no: SecretStr
    admin_id_valid: DateRange
    admin_id_front: OssKey
    admin_id_back: OssKey
    admin_phone: SecretStr
    certify_code: SecretStr = Field(description="the code RequiredPhoneCode sent to admin_phone")
    remark: str | None = Field(default=None, max_length=200)


class LetterForm(_Form):
    """What ``CreateSmsAuthorizationLetter`` needs besides the merchant's company (its name and
    credit code come from its qualification): the letter's name, the signatures it covers, how
    long, the scan of it, and the platform's company (the one it authorises)."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9\u4e00-\u9fff]+$")
    signatures: list[SignName] = Field(min_length=1, max_length=100)
    valid: DateRange
    letter_pic: OssKey
    platform_company: CompanyName


@dataclass(frozen=True)
class Review:
    status: ReviewState
    reason: str


@dataclass(frozen=True)
class QualificationReview:
    qualification_id: int
    status: QualificationState
    reason: str


def _review(status: ReviewState, reason: object, cancelled: bool = False) -> Review:
    if cancelled:
        return Review("rejected", CANCELLED)
    return Review(status, str(reason or "") if status == "rejected" else "")


def _got(status: object, audit_info: Any) -> Review:
    """GetSmsSign's / GetSmsTemplate's status and ``AuditInfo.RejectInfo`` as a review."""
    code = int(str(status or 0))
    reason = audit_info.reject_info if audit_info else None
    return _review(STATUS_CODES.get(code, "reviewing"), reason, cancelled=code == 10)


class AliyunSmsReview:
    """The platform's qualifications, authorization letters, signatures and templates on Aliyun."""

    def __init__(self, config: AliyunSmsConfig | AliyunKeys) -> None:
        self._sdk = SdkClient(config)

    async def _call(self, method: str, request: object) -> Any:
        return await self._sdk.call(method, request)

    async def send_phone_code(self, phone: SecretStr) -> None:
        """RequiredPhoneCode: Aliyun texts the administrator a code for their qualification."""
        request = sms_models.RequiredPhoneCodeRequest(phone_no=phone.get_secret_value())
        await self._call("required_phone_code_with_options_async", request)

    async def submit_qualification(self, form: QualificationForm) -> int:
        """SubmitSmsQualification, for third-party use: the qualification's id."""
        request = sms_models.SubmitSmsQualificationRequest(
            qualification_name=form.qualification_name,
            use_by_self=False,
            whether_share=False,
            company_name=form.company_name,
            company_type=form.company_type,
            organization_code=form.organization_code,
            business_license_pics=[
                sms_models.SubmitSmsQualificationRequestBusinessLicensePics(
                    type=pic.type, license_pic=pic.pic
                )
                for pic in form.business_licenses
            ],
            bussiness_license_exp_date=form.business_license_valid,
            legal_person_name=form.legal_person_name,
            legal_person_idcard_type=form.legal_person_id_type,
            legal_person_idcard_no=form.legal_person_id_no.get_secret_value(),
            legal_person_id_card_eff_time=form.legal_person_id_valid,
            admin_name=form.admin_name,
            admin_idcard_type=form.admin_id_type,
            admin_idcard_no=form.admin_id_no.get_secret_value(),
            admin_idcard_exp_date=form.admin_id_valid,
            admin_idcard_front_face=form.admin_id_front,
            admin_idcard_pic=form.admin_id_back,
            admin_phone_no=form.admin_phone.get_secret_value(),
            certify_code=form.certify_code.get_secret_value(),
            remark=form.remark,
        )
        body = await self._call("submit_sms_qualification_with_options_async", request)
        return int(str(body.data))

    async def qualification(self, name: str) -> QualificationReview | None:
        """QuerySmsQualificationRecord by the qualification's name (None: Aliyun has none so named)."""
        request = sms_models.QuerySmsQualificationRecordRequest(
            qualification_group_name=name, page_no=1, page_size=PAGE_SIZE
        )
        body = await self._call("query_sms_qualification_record_with_options_async", request)
        found = [
            r for r in (body.data.list if body.data else None) or [] if r.qualification_group_name == name
        ]
        if not found:
            return None
        record = found[0]
        state = QUALIFICATION_STATES.get(str(record.state_name), "reviewing")
        reason = str(record.audit_remark or "") if state in ("rejected", "incomplete") else ""
        return QualificationReview(int(record.group_id), state, reason)

    async def create_letter(self, form: LetterForm, company: str, organization_code: str) -> int:
        """CreateSmsAuthorizationLetter: ``company`` lets the platform sign with the names listed."""
        request = sms_models.CreateSmsAuthorizationLetterRequest(
            authorization=company,
            organization_code=organization_code,
            proxy_authorization=form.platform_company,
            sign_list=list(form.signatures),
            authorization_letter_exp_date=form.valid,
            authorization_letter_name=form.name,
            authorization_letter_pic=form.letter_pic,
        )
        body = await self._call("create_sms_authorization_letter_with_options_async", request)
        return int(str(body.data))

    async def create_signature(self, name: str, qualification_id: int, letter_id: int, remark: str) -> str:
        """CreateSmsSign for a merchant (third-party use): the review's order id."""
        request = sms_models.CreateSmsSignRequest(
            sign_name=name,
            sign_source=SIGN_SOURCE_COMPANY,
            sign_type=SIGN_TYPE_GENERAL,
            qualification_id=qualification_id,
            third_party=True,
            authorization_letter_id=letter_id,
            remark=remark,
        )
        body = await self._call("create_sms_sign_with_options_async", request)
        return str(body.order_id or "")

    async def signature(self, name: str) -> Review:
        """GetSmsSign: the review of one signature."""
        request = sms_models.GetSmsSignRequest(sign_name=name)
        body = await self._call("get_sms_sign_with_options_async", request)
        return _got(body.sign_status, body.audit_info)

    async def create_template(
        self, name: str, content: str, kind: str, related_signature: str, rule: Mapping[str, str], remark: str
    ) -> str:
        """CreateSmsTemplate: the code Aliyun gave the new template."""
        request = sms_models.CreateSmsTemplateRequest(
            template_name=name,
            template_content=content,
            template_type=TEMPLATE_TYPES[kind],
            related_sign_name=related_signature,
            template_rule=orjson.dumps(dict(rule)).decode() if rule else None,
            remark=remark,
        )
        body = await self._call("create_sms_template_with_options_async", request)
        return str(body.template_code)

    async def template(self, code: str) -> Review:
        """GetSmsTemplate: the review of one template."""
        request = sms_models.GetSmsTemplateRequest(template_code=code)
        body = await self._call("get_sms_template_with_options_async", request)
        return _got(body.template_status, body.audit_info)

    async def signatures(self, pages: int) -> dict[str, Review]:
        """QuerySmsSignList, at most ``pages`` pages: every signature of the account by name."""
        call = "query_sms_sign_list_with_options_async"
        signs = await self._listed(call, sms_models.QuerySmsSignListRequest, pages, "sms_sign_list")
        return {str(sign.sign_name): _audited(sign) for sign in signs}

    async def templates(self, pages: int) -> dict[str, Review]:
        """QuerySmsTemplateList, at most ``pages`` pages: every template of the account by code."""
        call = "query_sms_template_list_with_options_async"
        found = await self._listed(call, sms_models.QuerySmsTemplateListRequest, pages, "sms_template_list")
        return {str(template.template_code): _audited(template) for template in found}

    async def _listed(self, call: str, request: Callable[..., object], pages: int, entries: str) -> list[Any]:
        """The entries of a paged list, page after page until one is short or ``pages`` are read."""
        found: list[Any] = []
        for page in range(1, pages + 1):
            body = await self._call(call, request(page_index=page, page_size=PAGE_SIZE))
            listed = list(getattr(body, entries) or [])
            found.extend(listed)
            if len(listed) < PAGE_SIZE:
                break
        return found


def _audited(entry: Any) -> Review:
    """A list entry's AuditStatus and rejection (``Reason.RejectInfo``) as a review."""
    status = str(entry.audit_status)
    reason = entry.reason.reject_info if entry.reason else None
    return _review(AUDIT_STATES.get(status, "reviewing"), reason, cancelled=status.endswith("CANCEL"))
