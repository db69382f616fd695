"""The signature check docs/WEBHOOKS.md gives merchants, run as written against the pipeline's own
signatures: what a receiver copies must accept our calls and refuse forged or replayed ones."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from channels.webhook import secret_for, sign
from tests.factories import ROOT

SNIPPET = re.compile(r"```python\n(.*?)```", re.DOTALL)


@pytest.fixture(scope="module")
def verified() -> Callable[..., bool]:
    [code] = SNIPPET.findall((ROOT / "docs" / "WEBHOOKS.md").read_text())
    namespace: dict[str, object] = {}
    exec(compile(code, "docs/WEBHOOKS.md", "exec"), namespace)  # our own doc's snippet, as written
    check = namespace["verified"]
    assert callable(check)
    return check


def test_the_documented_check_accepts_a_call_and_refuses_a_forged_or_replayed_one(
    verified: Callable[..., bool],
) -> None:
    secret = secret_for(b"k" * 32, "wh_0123456789abcdef")
    body, at = b'{"id":"whc_1","type":"message.delivered"}', 1_796_390_000
    header = sign(secret, at, body)
    assert verified(secret, header, body, now=at + 10)
    assert not verified(secret, header, body.replace(b"delivered", b"failed"), now=at + 10)
    assert not verified("whsec_someone-else", header, body, now=at + 10)
    assert not verified(secret, header, body, now=at + 301)
    assert not verified(secret, "v1=" + header.rpartition("v1=")[2], body, now=at)
