"""The providers' request contracts, written from their public documentation (each schema names
its page in ``$comment``), not from our code: every request the sandbox received in a test run is
checked against the schema of its endpoint, so neither the clients nor the sandbox can drift into
agreeing on something the providers do not document."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

HERE = Path(__file__).parent
REQUESTS = {
    "/cgi-bin/stable_token": "wechat.stable_token.request.json",
    "/cgi-bin/message/template/send": "wechat_oa.template_send.request.json",
    "/cgi-bin/message/subscribe/send": "wechat_mp.subscribe_send.request.json",
}
"""endpoint path -> the schema of its request body"""


@cache
def validator(path: str) -> Draft202012Validator:
    schema = json.loads((HERE / REQUESTS[path]).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def contract_problems(requests: list[dict[str, Any]]) -> list[str]:
    """Why requests the sandbox recorded (``{"path", "body", ...}``) break their endpoint's
    contract; requests to endpoints without a contract yet are not judged."""
    problems = []
    for request in requests:
        path = request.get("path")
        if path not in REQUESTS:
            continue
        for error in validator(path).iter_errors(request.get("body")):
            where = "/".join(str(part) for part in error.absolute_path) or "(body)"
            problems.append(f"{path} {where}: {error.message}")
    return problems
