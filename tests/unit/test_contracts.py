"""The providers' contracts (tests/contracts/) are valid JSON Schemas naming their documentation
page and judge what the clients build: a message as the OA and MP clients send it passes; one
WeChat would refuse does not; the sandbox refuses such a request as WeChat and Aliyun do, and
notes an answer of its own that breaks its contract."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from channels.wechat_mp import subscribe_message
from channels.wechat_oa import template_message
from tests.conftest import Sandbox
from tests.contracts import contract_problems, contracts
from tests.factories import delivery as delivery_of
from tests.unit.test_wechat_mp_and_templates import _call, _token

PROVIDERS = ("https://developers.weixin.qq.com/", "https://help.aliyun.com/")
CALLED = [
    "/cgi-bin/stable_token",
    "/cgi-bin/message/template/send",
    "/cgi-bin/message/subscribe/send",
    "/cgi-bin/template/api_add_template",
    "/cgi-bin/template/get_all_private_template",
    "/cgi-bin/template/del_private_template",
    "/cgi-bin/template/get_industry",
    "/wxaapi/newtmpl/addtemplate",
    "/wxaapi/newtmpl/gettemplate",
    "/wxaapi/newtmpl/deltemplate",
    "/wxaapi/newtmpl/getcategory",
    "SendSms",
    "QuerySendDetails",
    "RequiredPhoneCode",
    "SubmitSmsQualification",
    "QuerySmsQualificationRecord",
    "CreateSmsAuthorizationLetter",
    "CreateSmsSign",
    "GetSmsSign",
    "QuerySmsSignList",
    "CreateSmsTemplate",
    "GetSmsTemplate",
    "QuerySmsTemplateList",
]
"""every provider endpoint the project calls"""


@pytest.mark.parametrize("key", sorted(contracts()))
def test_each_contract_is_a_schema_and_names_its_documentation_page(key: tuple[str, str]) -> None:
    contract = contracts()[key]
    assert contract.page.startswith("Written from https://")
    assert any(provider in contract.page for provider in PROVIDERS)


def test_every_endpoint_called_has_a_response_contract_and_every_one_with_a_body_a_request_contract() -> None:
    answered = {target for target, part in contracts() if part == "response"}
    assert answered == set(CALLED)
    asked = {target for target, part in contracts() if part == "request"}
    gets = {"/cgi-bin/template/get_all_private_template", "/cgi-bin/template/get_industry"}
    gets |= {"/wxaapi/newtmpl/gettemplate", "/wxaapi/newtmpl/getcategory"}
    assert asked == set(CALLED) - gets


def _sent(path: str, body: Any) -> list[str]:
    return contract_problems([{"path": path, "body": body}])


def test_the_clients_requests_keep_the_contracts() -> None:
    delivery = replace(delivery_of(), link="pages/order/detail?order_no=E1")
    assert _sent("/cgi-bin/message/template/send", template_message(delivery)) == []
    assert _sent("/cgi-bin/message/subscribe/send", subscribe_message(delivery, "formal")) == []


def test_a_request_wechat_does_not_document_is_a_problem() -> None:
    coloured = {"touser": "o1", "template_id": "t", "data": {"thing1": {"value": "x", "color": "#f00"}}}
    [problem] = _sent("/cgi-bin/message/template/send", coloured)
    assert problem.startswith("/cgi-bin/message/template/send request data/thing1: Additional properties")
    assert "'color' was unexpected" in problem
    staged = {
        "touser": "o1",
        "template_id": "t",
        "data": {"thing1": {"value": "x"}},
        "miniprogram_state": "beta",
    }
    assert "miniprogram_state" in _sent("/cgi-bin/message/subscribe/send", staged)[0]
    assert _sent("/cgi-bin/elsewhere", {"anything": 1}) == [], "endpoints without a contract are not judged"


async def test_the_sandbox_refuses_a_request_off_its_contract_as_wechat_does_and_notes_it(
    sandbox: Sandbox,
) -> None:
    token = await _token(sandbox)
    coloured = {
        "touser": "oR8sTunfollowed0000000000xYz",
        "template_id": "t",
        "data": {"thing1": {"value": "x", "color": "#f00"}},
    }
    answer = await _call(sandbox, "POST", "/cgi-bin/message/template/send", token, coloured)
    assert answer["errcode"] == 47001
    assert "'color' was unexpected" in answer["errmsg"]
    [breach] = sandbox.state.breaches
    assert (breach["target"], breach["by"]) == ("/cgi-bin/message/template/send", "caller")
    sandbox.state.breaches.clear()  # noted as it should be: not the sandbox's own breach


async def test_the_sandboxs_answers_are_judged_against_the_response_contracts(sandbox: Sandbox) -> None:
    """An answer with a field WeChat does not document is noted as the sandbox's own breach."""
    token = await _token(sandbox)
    listing = await _call(sandbox, "GET", "/cgi-bin/template/get_all_private_template", token)
    assert (
        contract_problems(
            [{"path": "/cgi-bin/template/get_all_private_template", "body": listing}], "response"
        )
        == []
    )
    invented = listing | {"total": 1}
    [problem] = contract_problems(
        [{"path": "/cgi-bin/template/get_all_private_template", "body": invented}], "response"
    )
    assert "'total' was unexpected" in problem
