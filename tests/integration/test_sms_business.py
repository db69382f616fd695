"""The SMS business on the real broker and sandbox: balances that stay exact through a SIGKILL,
and packages, signatures and templates through the admin API and their reviews."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from streams.core.sms_quota import AccountBook, Balance, load_packages, new_purchase
from streams.devtools.demo import Settlement, delivery_of, source_of
from streams.devtools.local_stack import Service
from streams.ops.reading import end_offsets, read_all, read_until
from streams.ops.shop_store import publish_purchases
from streams.settings import PROJECT_ROOT
from tests.factories import DEMO_SHOP, event, fresh_code, to_bytes
from tests.integration.admin import SHOP, SHOP_TOKEN, buy_sms, call
from tests.integration.conftest import PLATFORM_TOKEN, SETTLE_SECONDS, Pipeline, ok, run_cli

pytestmark = pytest.mark.integration
FINAL = {"delivered", "skipped", "dead_lettered"}
CODES = 200
PAYMENTS = 20


def balance(pipeline: Pipeline, shop_id: int) -> Balance:
    book = AccountBook()
    for record in read_all(pipeline.bootstrap, pipeline.topics.sms_account, timeout=30):
        book.apply(record.key, record.value)
    return book.balance(shop_id)


@pytest.mark.slow
def test_a_sigkill_mid_stream_leaves_every_balance_exact(pipeline: Pipeline) -> None:
    """Purchases minus the segments of the SMS sent, each charged once, none sent uncharged."""
    before = balance(pipeline, DEMO_SHOP)
    pipeline.add_fault(target="SendSms", latency_ms=20, count=CODES)  # a slower Aliyun
    start = end_offsets(pipeline.bootstrap, pipeline.topics.outcomes)
    published = pipeline.publish([to_bytes(fresh_code()) for _ in range(CODES)])
    read_until(
        pipeline.bootstrap, pipeline.topics.outcomes, start, lambda rs: len(rs) >= CODES // 4, SETTLE_SECONDS
    )
    pipeline.restart_worker(signal.SIGKILL)
    records = read_until(
        pipeline.bootstrap, pipeline.topics.outcomes, start, Settlement(published), 3 * SETTLE_SECONDS
    )
    sources = {source_of(p) for p in published}
    outcomes = [orjson.loads(r.value or b"") for r in records]
    mine = [o for o in outcomes if "{topic}[{partition}]@{offset}".format(**o["source"]) in sources]
    assert len({o["delivery_id"] for o in mine}) == CODES, "a code has no outcome"
    delivered = {o["delivery_id"] for o in mine if o["status"] == "delivered"}
    # Aliyun took every code once; a code in flight when the worker died was sent again after
    # the restart, and Aliyun's per-phone flow control refused that second copy
    sent = {delivery_of(m) for m in pipeline.sandbox_messages("aliyun_sms")} & {
        o["delivery_id"] for o in mine
    }
    assert len(sent) == CODES, Counter((o["status"], o.get("reason")) for o in mine)
    # a code in flight when the worker died was asked about (QuerySendDetails) before it was sent
    # again: what Aliyun took is delivered, not dead-lettered by its flow control's answer
    assert delivered == sent, Counter((o["status"], o.get("reason")) for o in mine)
    after = balance(pipeline, DEMO_SHOP)
    assert after.purchased == before.purchased
    assert after.used - before.used == len(sent)  # one segment each: charged exactly once, none free
    assert after.sent - before.sent == len(sent)


@pytest.mark.slow
def test_a_sigkill_between_payments_and_their_credit_leaves_the_balance_exact(pipeline: Pipeline) -> None:
    """Each payment event (delivered twice) credits its order once, whatever the crash cut short."""
    before = balance(pipeline, DEMO_SHOP)
    basic = load_packages(PROJECT_ROOT / "config" / "sms_packages.yaml")["basic"]
    orders = [new_purchase(DEMO_SHOP, basic, "shop 9001", datetime.now(UTC)) for _ in range(PAYMENTS)]
    publish_purchases(pipeline.bootstrap, pipeline.topics.sms_account, orders)
    payments = []
    for order in orders:
        paid = {
            "purchase_id": order.purchase_id,
            "amount_fen": order.price_fen,
            "payment_no": f"PAY-{order.purchase_id[:12]}",
            "paid_at": datetime.now(UTC).isoformat(),
        }
        payments += [to_bytes(event("sms_package.paid", paid))] * 2
    start = end_offsets(pipeline.bootstrap, pipeline.topics.outcomes)
    published = pipeline.publish(payments)
    read_until(pipeline.bootstrap, pipeline.topics.outcomes, start, lambda rs: len(rs) >= PAYMENTS // 2, 30)
    pipeline.restart_worker(signal.SIGKILL)
    read_until(pipeline.bootstrap, pipeline.topics.outcomes, start, Settlement(published), 3 * SETTLE_SECONDS)
    after = balance(pipeline, DEMO_SHOP)
    assert after.purchased - before.purchased == PAYMENTS * basic.messages
    book = AccountBook()
    for record in read_all(pipeline.bootstrap, pipeline.topics.sms_account, timeout=30):
        book.apply(record.key, record.value)
    assert all(book.paid(order) for order in orders)


@pytest.mark.slow
def test_a_code_aliyun_took_just_before_a_sigkill_is_delivered_sent_once_and_charged_once(
    pipeline: Pipeline,
) -> None:
    """Aliyun takes the code and its answer is held: the worker dies before it hears it. The next
    worker finds the code in doubt, asks Aliyun (QuerySendDetails by phone, day and OutId), and
    records it delivered without sending it again."""
    before = balance(pipeline, DEMO_SHOP)
    pipeline.add_fault(target="SendSms", hold_ms=60_000, count=1)
    start = end_offsets(pipeline.bootstrap, pipeline.topics.outcomes)
    code = fresh_code()
    published = pipeline.publish([to_bytes(code)])
    phone = code["data"]["user"]["phone"]
    deadline = time.monotonic() + SETTLE_SECONDS
    while not (
        taken := [m for m in pipeline.sandbox_messages("aliyun_sms") if m["query"]["PhoneNumbers"] == phone]
    ):
        assert time.monotonic() < deadline, "Aliyun never got the code"
        time.sleep(0.1)
    pipeline.restart_worker(signal.SIGKILL)  # while Aliyun's answer is held
    records = read_until(
        pipeline.bootstrap, pipeline.topics.outcomes, start, Settlement(published), 3 * SETTLE_SECONDS
    )
    [delivery_id] = {delivery_of(m) for m in taken}
    outcomes = [orjson.loads(r.value or b"") for r in records]
    mine = [o for o in outcomes if o.get("delivery_id") == delivery_id and o["status"] in FINAL]
    assert [o["status"] for o in mine] == ["delivered"], mine
    assert "already had it" in mine[0]["reason"]
    sends = [r for r in pipeline.sandbox_requests("SendSms") if r["query"].get("OutId") == delivery_id]
    assert len(sends) == 1, "sent again after the crash"
    after = balance(pipeline, DEMO_SHOP)
    assert (after.used - before.used, after.sent - before.sent) == (1, 1)


def until_status(api: Service, path: str, name: str, wanted: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        status, answer = call(api, "GET", path, SHOP_TOKEN)
        assert status == 200, answer
        items = answer["signatures"] if isinstance(answer, dict) else answer
        found = next(item for item in items if name in (item.get("name"), item.get("template_code")))
        if found["status"] == wanted:
            return dict(found)
        assert time.monotonic() < deadline, f"{name} never became {wanted}: {found}"
        time.sleep(0.5)


def test_a_shop_buys_a_package_and_sees_its_balance_and_purchases(api: Service) -> None:
    status, packages = call(api, "GET", "/v1/sms/packages", SHOP_TOKEN)
    assert status == 200
    assert {p["id"] for p in packages} >= {"trial", "basic"}
    _, was = call(api, "GET", f"/v1/shops/{SHOP}/sms/balance", SHOP_TOKEN)
    status, order = call(api, "POST", f"/v1/shops/{SHOP}/sms/purchases", SHOP_TOKEN, {"package": "basic"})
    assert status == 201
    assert (order["messages"], order["price_fen"], order["who"], order["status"]) == (
        1000,
        4500,
        str(SHOP),
        "pending",
    )
    _, pending = call(api, "GET", f"/v1/shops/{SHOP}/sms/balance", SHOP_TOKEN)
    assert pending["purchased"] == was["purchased"], "an unpaid order credits nothing"
    # the shop cannot pay its own order; the platform confirms the payment, twice: credited once
    payment = f"/v1/shops/{SHOP}/sms/purchases/{order['purchase_id']}/payment"
    assert call(api, "POST", payment, SHOP_TOKEN, {"reason": "trust me"})[0] == 403
    for _ in range(2):
        status, paid = call(api, "POST", payment, PLATFORM_TOKEN, {"reason": "transfer 20261204-01"})
        assert (status, paid["status"], paid["payment"]["reason"]) == (200, "paid", "transfer 20261204-01")
    _, now = call(api, "GET", f"/v1/shops/{SHOP}/sms/balance", SHOP_TOKEN)
    assert now["purchased"] - was["purchased"] == 1000
    assert now["available"] == now["purchased"] - now["used"]
    _, bought = call(api, "GET", f"/v1/shops/{SHOP}/sms/purchases", SHOP_TOKEN)
    assert paid in bought
    unknown = f"/v1/shops/{SHOP}/sms/purchases/no-such-order/payment"
    assert call(api, "POST", unknown, PLATFORM_TOKEN, {"reason": "x"})[0] == 404
    # the trial package once per shop
    assert call(api, "POST", f"/v1/shops/{SHOP}/sms/purchases", SHOP_TOKEN, {"package": "trial"})[0] == 201
    again = call(api, "POST", f"/v1/shops/{SHOP}/sms/purchases", SHOP_TOKEN, {"package": "trial"})
    assert again[0] == 409
    refused = call(api, "POST", f"/v1/shops/{SHOP}/sms/purchases", SHOP_TOKEN, {"package": "gold"})
    assert refused[0] == 422
    # the platform's packages, in the file's order (others the tests created may follow)
    assert refused[1]["problems"][0].startswith(
        "package: no package gold (packages: trial, basic, standard, large"
    )
    assert call(api, "GET", f"/v1/shops/{DEMO_SHOP}/sms/balance", SHOP_TOKEN)[0] == 403


ADMIN_PHONE = "13900003003"
QUALIFICATION = {
    "qualification_name": "三号店资质",
    "company_name": "杭州三号店网络科技有限公司",
    "organization_code": "91330100MA3003XX3X",
    "business_licenses": [{"type": "businessLicense", "pic": "3003/license.png"}],
    "business_license_valid": "2020-01-01~2099-12-31",
    "legal_person_name": "赵六",
    "legal_person_id_no": "330100198001013003",
    "legal_person_id_valid": "2020-01-01~2040-01-01",
    "admin_name": "钱七",
    "admin_id_no": "330100198502023003",
    "admin_id_valid": "2020-01-01~2040-01-01",
    "admin_id_front": "3003/admin-front.png",
    "admin_id_back": "3003/admin-back.png",
    "admin_phone": ADMIN_PHONE,
}


def history_actions(api: Service) -> list[str]:
    status, changes = call(api, "GET", f"/v1/shops/{SHOP}/settings/history", PLATFORM_TOKEN)
    assert status == 200, changes
    return [str(change["action"]) for change in changes if change["who"] == "aliyun"]


def until(what: str, found: Any, seconds: float = 30.0) -> Any:
    deadline = time.monotonic() + seconds
    while not (answer := found()):
        assert time.monotonic() < deadline, f"no {what} in {seconds:.0f} s"
        time.sleep(0.5)
    return answer


def papers(api: Service, pipeline: Pipeline, names: list[str]) -> dict[str, Any]:
    """The shop's qualification (approved by Aliyun, as the worker's poller learns) and a letter
    naming ``names``; the qualification as the API shows it."""
    sms = f"/v1/shops/{SHOP}/sms"
    code = f"{sms}/qualification/phone-code"
    assert call(api, "POST", code, SHOP_TOKEN, {"phone": ADMIN_PHONE})[0] == 403
    status, sent = call(api, "POST", code, PLATFORM_TOKEN, {"phone": ADMIN_PHONE})
    assert (status, sent) == (200, {"sent_to": "***3003"})
    received = pipeline.sandbox_get(f"aliyun/phone-codes/{ADMIN_PHONE}")["code"]  # type: ignore[call-overload]
    status, kept = call(
        api, "POST", f"{sms}/qualification", PLATFORM_TOKEN, QUALIFICATION | {"certify_code": received}
    )
    assert status == 201, kept
    assert (kept["company_name"], kept["status"]) == ("杭州三号店网络科技有限公司", "reviewing")
    assert not {"legal_person_id_no", "admin_phone", "certify_code"} & set(kept)
    _, settings = call(api, "GET", f"/v1/shops/{SHOP}/settings", PLATFORM_TOKEN)
    for secret in ("330100198001013003", "330100198502023003", ADMIN_PHONE, received):
        assert secret not in str(settings)
    # nobody lists anything: the worker's poller asks Aliyun, its reviews lane saves the answer
    approved = until(
        "approved qualification",
        lambda: (q := call(api, "GET", f"{sms}/qualification", SHOP_TOKEN)[1])["status"] == "approved" and q,
    )
    letter = {
        "name": f"三号店授权书{names[0][-5:]}",
        "signatures": names,
        "valid": "2026-01-01~2036-12-31",
        "letter_pic": "3003/letter.png",
        "platform_company": "百客商城科技有限公司",
    }
    status, created = call(api, "POST", f"{sms}/letter", PLATFORM_TOKEN, letter)
    assert (status, created["signatures"]) == (201, names), created
    return dict(approved)


def signature_status(api: Service, name: str) -> str:
    _, answer = call(api, "GET", f"/v1/shops/{SHOP}/sms/signatures", SHOP_TOKEN)
    return str(next(s["status"] for s in answer["signatures"] if s["name"] == name))


def test_reviews_take_effect_by_aliyuns_push_and_by_the_poller_and_the_signature_sends_a_code(
    api: Service, pipeline: Pipeline
) -> None:
    path = f"/v1/shops/{SHOP}/sms/signatures"
    stamp = int(time.time()) % 100000
    pushed, polled = f"三号店{stamp}", f"三号旗舰{stamp}"
    for name in (pushed, polled):
        assert call(api, "POST", path, SHOP_TOKEN, {"name": name})[0] == 201
    # without papers the platform's approval does not reach Aliyun
    status, answer = call(api, "POST", f"{path}/{quote(pushed)}/review", PLATFORM_TOKEN, {"approve": True})
    assert (status, answer["problems"][0].split(":")[0]) == (409, f"shop {SHOP}'s qualification is missing")
    qualification = papers(api, pipeline, [pushed, polled])
    shown = ok(run_cli(pipeline, "sms", "qualification", "status", str(SHOP)))
    assert f"Aliyun's id {qualification['qualification_id']}: approved" in shown
    assert f"covers {pushed}, {polled} from 2026-01-01 to 2036-12-31" in ok(
        run_cli(pipeline, "sms", "letter", "show", str(SHOP))
    )
    # the platform's review: a rejection needs a reason; an approval goes to Aliyun (CreateSmsSign)
    named = f"{path}/{quote(pushed)}"
    assert call(api, "POST", f"{named}/review", SHOP_TOKEN, {"approve": True})[0] == 403
    status, answer = call(api, "POST", f"{named}/review", PLATFORM_TOKEN, {"approve": False})
    assert (status, answer["problems"]) == (
        409,
        ["a rejection needs a reason the shop can act on (--reason)"],
    )
    # Aliyun's push alone: the poller cannot get an answer meanwhile
    pipeline.add_fault(target="QuerySmsSignList", http_status=503, duration_seconds=8)
    assert call(api, "POST", f"{named}/review", PLATFORM_TOKEN, {"approve": True})[0] == 200
    [created] = [r for r in pipeline.sandbox_requests("CreateSmsSign") if r["query"]["SignName"] == pushed]
    assert created["query"]["QualificationId"] == str(qualification["qualification_id"])
    assert created["query"]["ThirdParty"].lower() == "true"
    status, answer = call(api, "POST", f"{named}/activate", SHOP_TOKEN)
    assert (status, answer["problems"]) == (
        409,
        [f"signature '{pushed}' is submitted: only an approved signature can be active"],
    )
    until("approval by push", lambda: signature_status(api, pushed) == "approved")
    assert f"Aliyun: signature {pushed} approved (SignSmsReport)" in history_actions(api)
    # the poller alone: Aliyun pushes nothing (a push never configured, or lost)
    pipeline.tell_sandbox("aliyun/review-pushes?enabled=false", {})
    try:
        assert (
            call(api, "POST", f"{path}/{quote(polled)}/review", PLATFORM_TOKEN, {"approve": True})[0] == 200
        )
        until("approval by the poller", lambda: signature_status(api, polled) == "approved", seconds=45)
    finally:
        pipeline.tell_sandbox("aliyun/review-pushes?enabled=true", {})
    assert f"Aliyun: signature {polled} approved (poll)" in history_actions(api)
    # the seller was told on the Official Account (the scene is on in this shop's settings)
    told = until(
        "seller notice",
        lambda: [
            m["body"]
            for m in pipeline.sandbox_messages("wechat_oa")
            if m["body"]["template_id"] == "oa-seller-sms-review-finished-v1"
            and m["body"]["data"]["thing1"]["value"].endswith(pushed[-5:])
        ],
    )
    assert told[0]["data"]["phrase2"]["value"] == "通过"
    # the approved signature sends the shop's next code
    status, saved = call(api, "POST", f"{named}/activate", SHOP_TOKEN)
    assert (status, saved["sms"]["active"]) == (200, pushed)
    buy_sms(api)
    until(
        "the worker's settings",
        lambda: (
            call(pipeline.worker, "GET", f"/shops/{SHOP}/settings", PLATFORM_TOKEN)[1]["sms"]["active"]
            == pushed
        ),
    )
    start = end_offsets(pipeline.bootstrap, pipeline.topics.outcomes)
    [published] = pipeline.publish([to_bytes(fresh_code() | {"shopid": SHOP})])
    [outcome] = [
        orjson.loads(r.value or b"")
        for r in read_until(
            pipeline.bootstrap, pipeline.topics.outcomes, start, Settlement([published]), SETTLE_SECONDS
        )
        if orjson.loads(r.value or b"").get("status") in FINAL
    ]
    assert outcome["status"] == "delivered", outcome
    [sent] = [m for m in pipeline.sandbox_messages("aliyun_sms") if delivery_of(m) == outcome["delivery_id"]]
    assert sent["query"]["SignName"] == pushed


def test_the_eleventh_signature_and_another_shops_are_refused(api: Service) -> None:
    path = f"/v1/shops/{SHOP}/sms/signatures"
    _, answer = call(api, "GET", path, SHOP_TOKEN)
    for number in range(10 - len(answer["signatures"])):
        assert call(api, "POST", path, SHOP_TOKEN, {"name": f"备用签名{number}"})[0] == 201
    status, answer = call(api, "POST", path, SHOP_TOKEN, {"name": "第十一个"})
    assert status == 409
    assert answer["problems"] == [
        f"shop {SHOP} already has 10 signatures, the most a shop may hold; "
        "a rejected one can be applied for again"
    ]
    _, other = call(api, "GET", f"/v1/shops/{DEMO_SHOP}/settings", PLATFORM_TOKEN)
    taken = other["sms"]["active"]
    status, answer = call(api, "POST", path, SHOP_TOKEN, {"name": taken})
    assert (status, answer["problems"]) == (403, [f"signature '{taken}' belongs to another shop"])


def test_a_shop_cannot_change_the_platforms_record_by_saving_its_settings(api: Service) -> None:
    _, current = call(api, "GET", f"/v1/shops/{SHOP}/settings", SHOP_TOKEN)
    for field, value in (
        ("wechat_oa", {"appid": "wx0000000000othershop"}),
        ("sms", {**current["sms"], "signatures": [{"name": "偷来的签名", "status": "approved"}]}),
    ):
        status, answer = call(api, "PUT", f"/v1/shops/{SHOP}/settings", SHOP_TOKEN, current | {field: value})
        assert status == 403, answer
        assert answer["problems"][0].startswith(f"{field}")
    # what is the shop's to change still saves
    status, _ = call(api, "PUT", f"/v1/shops/{SHOP}/settings", SHOP_TOKEN, current)
    assert status == 200


def test_a_template_is_submitted_to_aliyun_and_used_once_approved(api: Service) -> None:
    path = f"/v1/shops/{SHOP}/sms/templates"
    template = {
        "name": "登录码",
        "scene": "code_login",
        "content": "登录验证码${code}，勿告诉他人。",
        "enabled": False,
    }
    status, saved = call(api, "POST", path, SHOP_TOKEN, template)
    assert status == 201, saved
    code = saved["sms_templates"][-1]["template_code"]
    assert saved["sms_templates"][-1]["status"] == "reviewing"
    assert until_status(api, path, code, "approved")["content"] == template["content"]
    status, answer = call(api, "POST", path, SHOP_TOKEN, template | {"content": "验证码${pin}"})
    assert (status, answer["problems"]) == (
        422,
        [f"sms_templates.{len(saved['sms_templates'])}.content: unknown variable pin"],
    )
    status, answer = call(api, "POST", path, SHOP_TOKEN, template | {"enabled": True})
    assert status == 409
    assert "already has the enabled template" in answer["problems"][0]


def test_the_platform_orders_and_confirms_payments_from_the_command_line(pipeline: Pipeline) -> None:
    shop = "9001"
    before = balance(pipeline, DEMO_SHOP).available
    ordered = ok(run_cli(pipeline, "sms", "buy", shop, "--package", "basic"))
    assert "pending until paid" in ordered
    purchase_id = ordered.split("purchase ")[1].split()[0].rstrip(",")
    assert balance(pipeline, DEMO_SHOP).available == before
    paid = ok(run_cli(pipeline, "sms", "pay", shop, purchase_id, "--reason", "transfer 20261204-02"))
    assert f"purchase {purchase_id} paid (transfer 20261204-02)" in paid
    ok(run_cli(pipeline, "sms", "pay", shop, purchase_id, "--reason", "again"))  # credits once
    assert balance(pipeline, DEMO_SHOP).available == before + 1000
    ok(run_cli(pipeline, "sms", "buy", shop, "--package", "basic", "--paid", "cash at the counter"))
    assert balance(pipeline, DEMO_SHOP).available == before + 2000
    orders = json.loads(ok(run_cli(pipeline, "sms", "purchases", shop, "--json")))
    mine = [
        o
        for o in orders
        if o["payment"] and o["payment"]["reason"] in ("transfer 20261204-02", "cash at the counter")
    ]
    assert [o["status"] for o in mine] == ["paid", "paid"]
    refused = run_cli(pipeline, "sms", "pay", shop, "no-such-order", "--reason", "x")
    assert (refused.returncode, refused.stderr.strip()) == (1, "shop 9001 has no purchase 'no-such-order'")


def test_the_mall_payment_services_event_credits_an_order_once_however_often_delivered(
    api: Service, pipeline: Pipeline
) -> None:
    status, order = call(api, "POST", f"/v1/shops/{SHOP}/sms/purchases", SHOP_TOKEN, {"package": "standard"})
    assert (status, order["status"]) == (201, "pending")
    _, was = call(api, "GET", f"/v1/shops/{SHOP}/sms/balance", SHOP_TOKEN)
    paid = {
        "purchase_id": order["purchase_id"],
        "amount_fen": order["price_fen"],
        "payment_no": f"PAY-{order['purchase_id'][:8]}",
        "paid_at": datetime.now(UTC).isoformat(),
    }
    events = [to_bytes(event("sms_package.paid", paid, shop=SHOP)) for _ in range(2)]  # delivered twice
    _, outcomes = pipeline.run(events)
    reasons = [o.reason for found in outcomes.values() for o in found]
    assert reasons == [f"sms_purchase_paid: {order['messages']} messages credited"] * 2, reasons
    deadline = time.monotonic() + 15
    while (now := call(api, "GET", f"/v1/shops/{SHOP}/sms/balance", SHOP_TOKEN)[1])["purchased"] == was[
        "purchased"
    ]:
        assert time.monotonic() < deadline, "the API never saw the payment"
        time.sleep(0.2)
    assert now["purchased"] - was["purchased"] == order["messages"]
    _, orders = call(api, "GET", f"/v1/shops/{SHOP}/sms/purchases", SHOP_TOKEN)
    [shown] = [o for o in orders if o["purchase_id"] == order["purchase_id"]]
    assert (shown["status"], shown["payment"]["who"]) == ("paid", f"payment:PAY-{order['purchase_id'][:8]}")


def test_the_platform_manages_packages_at_run_time_and_purchases_keep_theirs(
    api: Service, pipeline: Pipeline
) -> None:
    package_id = f"promo{int(time.time()) % 100000}"
    promo = {"id": package_id, "name": "双十二包", "messages": 300, "price_fen": 990}
    assert call(api, "POST", "/v1/sms/packages", SHOP_TOKEN, promo)[0] == 403
    status, created = call(api, "POST", "/v1/sms/packages", PLATFORM_TOKEN, promo)
    assert status == 201, created
    assert created["price_fen"] == 990
    assert call(api, "POST", "/v1/sms/packages", PLATFORM_TOKEN, promo)[0] == 409
    purchases = f"/v1/shops/{SHOP}/sms/purchases"
    status, first = call(api, "POST", purchases, SHOP_TOKEN, {"package": package_id})
    assert (status, first["price_fen"]) == (201, 990)
    status, repriced = call(
        api, "PATCH", f"/v1/sms/packages/{package_id}", PLATFORM_TOKEN, {"price_fen": 1290}
    )
    assert (status, repriced["price_fen"]) == (200, 1290)
    _, second = call(api, "POST", purchases, SHOP_TOKEN, {"package": package_id})
    assert second["price_fen"] == 1290
    _, bought = call(api, "GET", purchases, SHOP_TOKEN)
    assert {o["purchase_id"]: o["price_fen"] for o in bought if o["package"] == package_id} == {
        first["purchase_id"]: 990,
        second["purchase_id"]: 1290,
    }
    # retired from the command line: sold no more, its purchases stand
    assert f"package {package_id} retired" in ok(run_cli(pipeline, "sms", "package", "retire", package_id))
    until(
        "the API following the retirement",
        lambda: package_id not in {p["id"] for p in call(api, "GET", "/v1/sms/packages", SHOP_TOKEN)[1]},
    )
    status, refused = call(api, "POST", purchases, SHOP_TOKEN, {"package": package_id})
    assert (status, refused["problems"][0].split(" (")[0]) == (422, f"package: no package {package_id}")
