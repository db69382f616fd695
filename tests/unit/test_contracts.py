"""The request contracts (tests/contracts/) are valid JSON Schemas and judge what the clients
build: a message as the OA and MP clients send it passes; one WeChat would refuse does not."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from channels.wechat_mp import subscribe_message
from channels.wechat_oa import template_message
from tests.contracts import REQUESTS, contract_problems, validator
from tests.factories import delivery as delivery_of


@pytest.mark.parametrize("path", sorted(REQUESTS))
def test_each_contract_is_a_schema_and_names_its_documentation_page(path: str) -> None:
    schema = validator(path).schema
    assert "https://developers.weixin.qq.com/" in schema["$comment"]


def _sent(path: str, body: Any) -> list[str]:
    return contract_problems([{"path": path, "body": body}])


def test_the_clients_requests_keep_the_contracts() -> None:
    delivery = replace(delivery_of(), link="pages/order/detail?order_no=E1")
    assert _sent("/cgi-bin/message/template/send", template_message(delivery)) == []
    assert _sent("/cgi-bin/message/subscribe/send", subscribe_message(delivery, "formal")) == []


def test_a_request_wechat_does_not_document_is_a_problem() -> None:
    coloured = {"touser": "o1", "template_id": "t", "data": {"thing1": {"value": "x", "color": "#f00"}}}
    [problem] = _sent("/cgi-bin/message/template/send", coloured)
    assert problem.startswith("/cgi-bin/message/template/send data/thing1: Additional properties")
    assert "'color' was unexpected" in problem
    staged = {
        "touser": "o1",
        "template_id": "t",
        "data": {"thing1": {"value": "x"}},
        "miniprogram_state": "beta",
    }
    assert "miniprogram_state" in _sent("/cgi-bin/message/subscribe/send", staged)[0]
    assert _sent("/cgi-bin/elsewhere", {"anything": 1}) == [], "endpoints without a contract are not judged"
