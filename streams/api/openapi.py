"""The OpenAPI 3.1 document of the admin API, built from the same pydantic models it speaks."""

from __future__ import annotations

from openapi_pydantic import (
    Components,
    Info,
    MediaType,
    OpenAPI,
    Operation,
    Parameter,
    PathItem,
    RequestBody,
    Response,
    SecurityScheme,
)
from openapi_pydantic.util import PydanticSchema, construct_open_api_with_schema_class
from pydantic import BaseModel, RootModel

from channels.aliyun_review import LetterForm, QualificationForm
from streams.api.bodies import (
    AliyunKeyRequest,
    Answered,
    ChoicesRequest,
    ChoicesSaved,
    PackageChange,
    PackageRequest,
    PaymentRequest,
    PhoneCodeRequest,
    PurchaseRequest,
    ReviewRequest,
    SignatureRequest,
    SubscribeTemplates,
    SwitchRequest,
    TemplateRequest,
    WeChatAppRequest,
)
from streams.core.buyer_choices import BuyerChoices
from streams.core.catalog import Catalog
from streams.core.events import MpSubscriptionAnswered
from streams.core.history import HistoryLine
from streams.core.send_log import Page, Spend
from streams.core.settings_history import SettingsChange
from streams.core.shops import AuthorizationLetter, Qualification, ShopRules, SmsAccount, SmsTemplate
from streams.core.sms_quota import Balance, Order, Package
from streams.core.webhooks import Endpoint, EndpointList, EndpointRequest, NewEndpoint


class Problems(BaseModel):
    problems: list[str]


class Health(BaseModel):
    ready: bool


class History(RootModel[list[SettingsChange]]):
    pass


class RecipientHistory(RootModel[list[HistoryLine]]):
    pass


class SmsTemplates(RootModel[list[SmsTemplate]]):
    pass


class Purchases(RootModel[list[Order]]):
    pass


class Packages(RootModel[list[Package]]):
    pass


class SentTo(BaseModel):
    sent_to: str


class WeChatAppShown(BaseModel):
    appid: str
    kind: str
    shop_id: int
    last4: str
    changed_at: str
    changed_by: str


class WeChatAppsShown(RootModel[list[WeChatAppShown]]):
    pass


class AliyunKeyShown(BaseModel):
    access_key_id: str
    last4: str
    changed_at: str
    changed_by: str


def _json_of(model: type[BaseModel]) -> dict[str, MediaType]:
    return {"application/json": MediaType(media_type_schema=PydanticSchema(schema_class=model))}


def _problem(description: str) -> Response:
    return Response(description=description, content=_json_of(Problems))


def _path(name: str, pattern: str | None = None) -> Parameter:
    schema: dict[str, str] = {"type": "string"} | ({"pattern": pattern} if pattern else {})
    return Parameter.model_validate({"name": name, "in": "path", "required": True, "schema": schema})


SHOP_ID = _path("shop_id", r"^[1-9][0-9]{0,17}$")
REFUSED = {
    "401": _problem("no valid bearer token"),
    "403": _problem("the token may not reach this shop"),
    "404": _problem("no such path, or the shop has no settings yet"),
}
WECHAT = {
    "409": _problem(
        "the account holds 25 templates (WeChat 45026 / 200012), or is not set up as the manual says "
        "(OA industry, MP service category)"
    ),
    "502": _problem("WeChat did not answer usefully (busy, down); try again later"),
}
SAVED = {"200": Response(description="saved", content=_json_of(ShopRules))}
INVALID = {
    "400": _problem("the body is not JSON"),
    "413": _problem("the body is larger than 256 KiB"),
    "422": _problem("refused: every problem, naming its field"),
    "503": _problem("Kafka did not acknowledge the save; try again"),
}


REVIEWED = {
    "409": _problem("a rule of the review refuses it (e.g. 10 signatures already, not approved yet)"),
    "502": _problem("Aliyun did not answer usefully; try again later"),
    "503": _problem("Kafka did not acknowledge, or no Aliyun AccessKey is configured"),
}


def _body(model: type[BaseModel]) -> RequestBody:
    return RequestBody(content=_json_of(model), required=True)


def _answer(description: str, model: type[BaseModel]) -> dict[str, Response]:
    return {"200": Response(description=description, content=_json_of(model))}


def _created(description: str, model: type[BaseModel]) -> dict[str, Response]:
    return {"201": Response(description=description, content=_json_of(model))}


def _query(name: str, description: str) -> Parameter:
    return Parameter.model_validate(
        {
            "name": name,
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": description,
        }
    )


RECIPIENT = [
    _query("phone", "the person's phone number (or openid)"),
    _query("openid", "the person's WeChat openid (or phone)"),
    _query("since", "2h, 7d, or an ISO time"),
]


def history_paths() -> dict[str, PathItem]:
    answers = {
        **_answer("what was sent to the person, newest first, with receipts", RecipientHistory),
        **REFUSED,
        "422": _problem("neither or both of phone and openid, or a bad since"),
        "503": _problem("no recipient key or database is configured, or the database did not answer"),
    }
    return {
        "/v1/history": PathItem(
            parameters=[*RECIPIENT, _query("shop", "only this shop")],
            get=_operation("What was sent to one person across shops (platform token)", answers),
        ),
        "/v1/shops/{shop_id}/history": PathItem(
            parameters=[SHOP_ID, *RECIPIENT],
            get=_operation("What the shop sent to one person", answers),
        ),
    }


def sms_paths() -> dict[str, PathItem]:
    shop = [SHOP_ID]
    signature = [SHOP_ID, _path("name")]
    return {
        "/v1/sms/packages": PathItem(
            get=_operation("The SMS packages on sale", {**_answer("packages", Packages), **REFUSED}),
            post=_operation(
                "Create a package (platform token); purchases copy its messages and price when ordered",
                {**_created("the package", Package), **REFUSED, **INVALID, **REVIEWED},
                requestBody=_body(PackageRequest),
            ),
        ),
        "/v1/sms/packages/{package_id}": PathItem(
            parameters=[_path("package_id", "^[a-z0-9_-]{1,32}$")],
            patch=_operation(
                "Change a package's price or name (platform token); purchases already ordered keep theirs",
                {**_answer("the package", Package), **REFUSED, **INVALID, **REVIEWED},
                requestBody=_body(PackageChange),
            ),
        ),
        "/v1/sms/packages/{package_id}/retire": PathItem(
            parameters=[_path("package_id", "^[a-z0-9_-]{1,32}$")],
            post=_operation(
                "Sell a package no more (platform token); its purchases stand",
                {**_answer("the package", Package), **REFUSED, **REVIEWED},
            ),
        ),
        "/v1/shops/{shop_id}/sms/purchases": PathItem(
            parameters=shop,
            get=_operation(
                "The shop's purchases, oldest first", {**_answer("purchases", Purchases), **REFUSED}
            ),
            post=_operation(
                "Order a package: pending until it is paid, its messages credited then (the trial "
                "package once per shop)",
                {
                    **_created("the purchase order", Order),
                    **REFUSED,
                    **INVALID,
                    "409": _problem("the shop already bought the trial package"),
                },
                requestBody=_body(PurchaseRequest),
            ),
        ),
        "/v1/shops/{shop_id}/sms/purchases/{purchase_id}/payment": PathItem(
            parameters=[SHOP_ID, _path("purchase_id", r"^[A-Za-z0-9_-]{1,64}$")],
            post=_operation(
                "The platform confirms an order's offline payment, with the reason (platform token): "
                "the balance is credited once however often it is confirmed",
                {
                    **_answer("the paid order", Order),
                    **REFUSED,
                    **INVALID,
                    "409": _problem("the order expired unpaid"),
                },
                requestBody=_body(PaymentRequest),
            ),
        ),
        "/v1/shops/{shop_id}/sms/balance": PathItem(
            parameters=shop,
            get=_operation(
                "The shop's SMS balance: bought, used, available, not sent",
                {**_answer("balance", Balance), **REFUSED},
            ),
        ),
        "/v1/shops/{shop_id}/sms/signatures": PathItem(
            parameters=shop,
            get=_operation(
                "The shop's signatures and their review (Aliyun's reviews take effect by themselves)",
                {**_answer("signatures", SmsAccount), **REFUSED, **REVIEWED},
            ),
            post=_operation(
                "Apply for a signature (at most 10); the platform reviews it next",
                {**_created("the shop's settings", ShopRules), **REFUSED, **INVALID, **REVIEWED},
                requestBody=_body(SignatureRequest),
            ),
        ),
        "/v1/shops/{shop_id}/sms/signatures/{name}/review": PathItem(
            parameters=signature,
            post=_operation(
                "The platform's review (platform token): approve submits it to Aliyun; reject needs a reason",
                {**SAVED, **REFUSED, **INVALID, **REVIEWED},
                requestBody=_body(ReviewRequest),
            ),
        ),
        "/v1/shops/{shop_id}/sms/signatures/{name}/activate": PathItem(
            parameters=signature,
            post=_operation(
                "Send the shop's SMS with this approved signature",
                {**SAVED, **REFUSED, **INVALID, **REVIEWED},
            ),
        ),
        "/v1/shops/{shop_id}/sms/qualification/phone-code": PathItem(
            parameters=shop,
            post=_operation(
                "Have Aliyun text the company's SMS administrator the code a qualification is "
                "submitted with (platform token; RequiredPhoneCode)",
                {**_answer("sent (the phone's last 4 digits)", SentTo), **REFUSED, **INVALID, **REVIEWED},
                requestBody=_body(PhoneCodeRequest),
            ),
        ),
        "/v1/shops/{shop_id}/sms/qualification": PathItem(
            parameters=shop,
            get=_operation(
                "The merchant's qualification and Aliyun's review of it",
                {**_answer("the qualification", Qualification), **REFUSED, **REVIEWED},
            ),
            post=_operation(
                "Submit the merchant's company to Aliyun for third-party use (platform token; "
                "SubmitSmsQualification): the people's details go to Aliyun only",
                {**_created("what is kept of it", Qualification), **REFUSED, **INVALID, **REVIEWED},
                requestBody=_body(QualificationForm),
            ),
        ),
        "/v1/shops/{shop_id}/sms/letter": PathItem(
            parameters=shop,
            get=_operation(
                "The merchant's authorization letter",
                {**_answer("the letter", AuthorizationLetter), **REFUSED},
            ),
            post=_operation(
                "Create the merchant's authorization letter for the signatures it names (platform "
                "token; CreateSmsAuthorizationLetter), from the company of its qualification",
                {**_created("the letter", AuthorizationLetter), **REFUSED, **INVALID, **REVIEWED},
                requestBody=_body(LetterForm),
            ),
        ),
        "/v1/shops/{shop_id}/wechat/{kind}": PathItem(
            parameters=[*shop, _path("kind", "^(oa|mp)$")],
            put=_operation(
                "Register the shop's Official Account (oa) or Mini Program (mp): its appid and AppSecret "
                "(platform token). The secret is sealed at rest and never shown again; workers use it "
                "from their next token on",
                {
                    **_answer("the app, its secret by its last four characters", WeChatAppShown),
                    **REFUSED,
                    **INVALID,
                },
                requestBody=_body(WeChatAppRequest),
            ),
        ),
        "/v1/platform/aliyun": PathItem(
            put=_operation(
                "Register the platform's Aliyun AccessKey (platform token): sealed at rest, never shown "
                "again; every Aliyun call of the workers and the API uses it from the next one",
                {
                    **_answer("the key, its secret by its last four characters", AliyunKeyShown),
                    **REFUSED,
                    **INVALID,
                },
                requestBody=_body(AliyunKeyRequest),
            ),
            get=_operation(
                "The registered AccessKey (platform token; its secret by its last four characters)",
                {**_answer("the key", AliyunKeyShown), **REFUSED},
            ),
        ),
        "/v1/shops/{shop_id}/wechat": PathItem(
            parameters=shop,
            get=_operation(
                "The shop's registered WeChat apps (secrets by their last four characters)",
                {**_answer("apps", WeChatAppsShown), **REFUSED},
            ),
        ),
        "/v1/shops/{shop_id}/sms/templates": PathItem(
            parameters=shop,
            get=_operation(
                "The shop's SMS templates and their review",
                {**_answer("templates", SmsTemplates), **REFUSED, **REVIEWED},
            ),
            post=_operation(
                "Check a template and submit it to Aliyun; it is sent once approved",
                {**_created("the shop's settings", ShopRules), **REFUSED, **INVALID, **REVIEWED},
                requestBody=_body(TemplateRequest),
            ),
        ),
    }


SEND_LOG_FILTERS = [
    _query("since", "2h, 7d, or an ISO time: finished since"),
    _query("until", "2h, 7d, or an ISO time: finished before"),
    _query("scene", "only this scene"),
    _query("channel", "wechat_oa, wechat_mp or aliyun_sms"),
    _query("status", "delivered, skipped or dead_lettered"),
    _query("reached", "true or false: what the provider's receipt said"),
    _query("phone", "only to this phone number (or openid)"),
    _query("openid", "only to this openid (or phone)"),
    _query("limit", "messages per page, 1 to 200 (50)"),
    _query("cursor", "the next page: the `next` of the previous one"),
]


def messages_paths() -> dict[str, PathItem]:
    answers = {
        **_answer("a page of the send log, newest first", Page),
        **REFUSED,
        "422": _problem("a filter that is not one, or a bad value (naming it)"),
        "503": _problem("no database configured, or it did not answer"),
    }
    return {
        "/v1/shops/{shop_id}/sms/spend": PathItem(
            parameters=[SHOP_ID, _query("days", "days up to today, 1 to 90 (7), in the mall's time")],
            get=_operation(
                "The shop's SMS balance and the SMS it sent each day, newest first (from the send log)",
                {
                    **_answer("balance and days", Spend),
                    **REFUSED,
                    "422": _problem("days out of range"),
                    "503": _problem("no database configured, or it did not answer"),
                },
            ),
        ),
        "/v1/messages": PathItem(
            parameters=[*SEND_LOG_FILTERS, _query("shop", "only this shop")],
            get=_operation("The send log of every shop (platform token)", answers),
        ),
        "/v1/shops/{shop_id}/messages": PathItem(
            parameters=[SHOP_ID, *SEND_LOG_FILTERS],
            get=_operation(
                "The shop's send log: what was sent to its buyers and sellers, and what became of it", answers
            ),
        ),
    }


def mp_paths() -> dict[str, PathItem]:
    return {
        "/v1/shops/{shop_id}/mp/subscribe-templates": PathItem(
            parameters=[
                SHOP_ID,
                _query("scenes", "comma-separated scene ids (default: every scene of the shop)"),
            ],
            get=_operation(
                "The template ids the mall's Mini Program asks the buyer to accept "
                "(wx.requestSubscribeMessage), per scene the shop sends there",
                {**_answer("per scene", SubscribeTemplates), **REFUSED, "422": _problem("an unknown scene")},
            ),
        ),
        "/v1/shops/{shop_id}/mp/subscriptions": PathItem(
            parameters=[SHOP_ID],
            post=_operation(
                "Record a buyer's answers to the subscription panel (published as the event "
                "mp_subscription.answered): each one-time acceptance allows one message",
                {
                    "202": Response(description="published", content=_json_of(Answered)),
                    **REFUSED,
                    **INVALID,
                },
                requestBody=_body(MpSubscriptionAnswered),
            ),
        ),
    }


def preferences_paths() -> dict[str, PathItem]:
    return {
        "/v1/shops/{shop_id}/buyers/{user_id}/preferences": PathItem(
            parameters=[SHOP_ID, _path("user_id", r"^[A-Za-z0-9_.:-]{1,200}$")],
            put=_operation(
                "Say what a buyer refuses (categories: transactional, marketing; channels), for this "
                "shop or, with the platform's token, every shop; replaces what was said before in that "
                "scope. Published as the event preferences.changed; security notices always go out",
                {
                    "202": Response(description="published", content=_json_of(ChoicesSaved)),
                    **REFUSED,
                    **INVALID,
                },
                requestBody=_body(ChoicesRequest),
            ),
            get=_operation(
                "What a buyer refuses in this shop and in every shop (from the send log's database, "
                "a moment after it was said)",
                {
                    **_answer("the buyer's preferences per scope (null: never said)", BuyerChoices),
                    **REFUSED,
                    "503": _problem("no database, or it did not answer"),
                },
            ),
        ),
    }


def webhook_paths() -> dict[str, PathItem]:
    endpoint = [SHOP_ID, _path("endpoint_id", r"^wh_[0-9a-f]{16}$")]
    missing = {**REFUSED, "503": _problem("no recipient key configured, or Kafka did not answer")}
    return {
        "/v1/shops/{shop_id}/webhooks": PathItem(
            parameters=[SHOP_ID],
            get=_operation(
                "The shop's webhook endpoints: where outcomes are POSTed, failing or switched off",
                {**_answer("the endpoints", EndpointList), **missing},
            ),
            post=_operation(
                "Register an endpoint (https, a public host) for some outcomes: delivered, failed, "
                "skipped, reached, not_reached; the answer has its signing secret, shown this once",
                {**_created("the endpoint and its secret", NewEndpoint), **missing, **INVALID},
                requestBody=_body(EndpointRequest),
            ),
        ),
        "/v1/shops/{shop_id}/webhooks/{endpoint_id}": PathItem(
            parameters=endpoint,
            delete=_operation("Remove an endpoint", {"204": Response(description="removed"), **missing}),
        ),
        "/v1/shops/{shop_id}/webhooks/{endpoint_id}/enable": PathItem(
            parameters=endpoint,
            post=_operation(
                "Switch an endpoint on again (after it was switched off for failing a day)",
                {**_answer("the endpoint", Endpoint), **missing},
            ),
        ),
    }


def _operation(summary: str, responses: dict[str, Response], **extra: object) -> Operation:
    return Operation(summary=summary, responses=responses, security=[{"bearer": []}], **extra)


def openapi_document() -> OpenAPI:
    settings_path = PathItem(
        parameters=[SHOP_ID],
        get=_operation(
            "A shop's settings",
            {"200": Response(description="the settings", content=_json_of(ShopRules)), **REFUSED},
        ),
        put=_operation(
            "Save a shop's settings (validated; workers apply them to the next event)",
            {**SAVED, **REFUSED, **INVALID},
            requestBody=RequestBody(content=_json_of(ShopRules), required=True),
        ),
    )
    scene = [SHOP_ID, _path("scene"), _path("channel")]
    document = OpenAPI(
        info=Info(
            title="mall-notify admin API",
            version="1",
            description="A shop's token reaches only its own shop; the platform's token every shop.",
        ),
        components=Components(
            securitySchemes={
                "bearer": SecurityScheme(
                    type="http", scheme="bearer", description="the platform's or a shop's token"
                )
            }
        ),
        paths={
            "/metrics": PathItem(
                get=Operation(
                    summary="Prometheus metrics of this API: the send log's query times (no token needed)",
                    responses={"200": Response(description="the text exposition format")},
                )
            ),
            "/healthz": PathItem(
                get=Operation(
                    summary="Ready when the shops' settings are loaded from Kafka (no token needed)",
                    responses={
                        "200": Response(description="ready", content=_json_of(Health)),
                        "503": Response(description="not ready yet", content=_json_of(Health)),
                    },
                )
            ),
            "/v1/catalog": PathItem(
                get=_operation(
                    "The notification catalog",
                    {"200": Response(description="scenes", content=_json_of(Catalog)), **REFUSED},
                )
            ),
            "/v1/shops/{shop_id}/settings": settings_path,
            "/v1/shops/{shop_id}/settings/history": PathItem(
                parameters=[SHOP_ID],
                get=_operation(
                    "Every change of the shop's settings kept (a year), oldest first: who, when, what",
                    {**_answer("changes", History), **REFUSED},
                ),
            ),
            "/v1/shops/{shop_id}/scenes/{scene}/{channel}/enable": PathItem(
                parameters=scene,
                post=_operation(
                    "Turn a scene on; a WeChat scene without a template of the account gets one added "
                    "(optional body: a custom template on a library template of the scene)",
                    {**SAVED, **REFUSED, **INVALID, **WECHAT},
                    requestBody=RequestBody(content=_json_of(SwitchRequest), required=False),
                ),
            ),
            "/v1/shops/{shop_id}/scenes/{scene}/{channel}/disable": PathItem(
                parameters=scene,
                post=_operation("Turn a scene off", {**SAVED, **REFUSED, **INVALID}),
            ),
            "/v1/shops/{shop_id}/templates": PathItem(
                parameters=[SHOP_ID],
                get=_operation(
                    "The templates the shop's Official Account holds, and the scenes using each",
                    {"200": Response(description="templates"), **REFUSED, **WECHAT},
                ),
            ),
            "/v1/shops/{shop_id}/templates/{template_id}": PathItem(
                parameters=[SHOP_ID, _path("template_id")],
                delete=_operation(
                    "Delete a template from the shop's OA; scenes using it are turned off",
                    {**SAVED, **REFUSED, **INVALID, **WECHAT},
                ),
            ),
            **sms_paths(),
            **history_paths(),
            **mp_paths(),
            **messages_paths(),
            **webhook_paths(),
            **preferences_paths(),
        },
    )
    return construct_open_api_with_schema_class(document)


OPENAPI = openapi_document().model_dump(mode="json", by_alias=True, exclude_none=True)
