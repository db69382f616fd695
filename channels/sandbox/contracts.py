"""The providers' contracts, as the sandbox holds itself and its callers to them.

Each contract is a JSON Schema under ``tests/contracts/`` written from the provider's public
documentation (its page named in ``$comment``), for one endpoint (``x-target``: a WeChat path, an
Aliyun action) and one part (``x-part``: its request, its response). What is judged: a WeChat
request's JSON body, or its form fields (each field's list of values); an Aliyun request's query
(the RPC parameters, all strings); every answer's JSON body.

The sandbox refuses a request that breaks its contract the way the provider refuses a malformed
call (so the clients cannot drift), and keeps a note of it and of any answer of its own that
breaks the response's contract (so the sandbox cannot drift either):
``GET /__sandbox__/contract-breaches``. Endpoints without a contract are not judged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from jsonschema import Draft202012Validator

DIRECTORY = Path(__file__).resolve().parents[2] / "tests" / "contracts"
Part = Literal["request", "response"]


@dataclass(frozen=True)
class Contract:
    target: str
    part: Part
    page: str
    validator: Draft202012Validator


@cache
def contracts(directory: Path = DIRECTORY) -> dict[tuple[str, Part], Contract]:
    """Every contract of the directory, by (target, part); none when it is not there."""
    found: dict[tuple[str, Part], Contract] = {}
    for path in sorted(directory.glob("*.json")):
        schema = json.loads(path.read_text())
        Draft202012Validator.check_schema(schema)
        key = (str(schema["x-target"]), schema["x-part"])
        found[key] = Contract(key[0], key[1], str(schema["$comment"]), Draft202012Validator(schema))
    return found


def problems(target: str, part: Part, document: Any) -> list[str]:
    """Why ``document`` breaks the contract of ``target``'s ``part`` (none without a contract)."""
    contract = contracts().get((target, part))
    if contract is None:
        return []
    return [
        f"{target} {part} {'/'.join(str(p) for p in error.absolute_path) or '(body)'}: {error.message}"
        for error in contract.validator.iter_errors(document)
    ]
