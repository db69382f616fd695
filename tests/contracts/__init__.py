"""The providers' contracts, written from their public documentation (each schema names its page
in ``$comment``, its endpoint in ``x-target``, request or response in ``x-part``), not from our
code. The sandbox (:mod:`channels.sandbox.contracts`) refuses a request that breaks its contract
as the provider would and notes it, and notes any answer of its own that breaks one: every
integration session ends by asserting there were none, so neither the clients nor the sandbox
can drift into agreeing on something the providers do not document."""

from __future__ import annotations

from typing import Any

from channels.sandbox.contracts import Part, contracts, problems


def contract_problems(requests: list[dict[str, Any]], part: Part = "request") -> list[str]:
    """Why documents (``{"path", "body"}`` as the sandbox records requests, or an Aliyun call's
    ``{"path": action, "query"}``) break their endpoint's contract."""
    found = []
    for request in requests:
        target = str(request.get("path"))
        aliyun = not target.startswith("/")
        found += problems(target, part, request.get("query") if aliyun else request.get("body"))
    return found


__all__ = ["contract_problems", "contracts"]
