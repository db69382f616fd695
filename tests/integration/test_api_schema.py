"""Schemathesis against the admin API on the real broker: each operation of the published OpenAPI
document, called with what the document allows and with what it does not, as the platform and as a
shop. No answer is a 5xx, and every answer is what the document says (status, content type,
headers, body schema); what the document refuses is refused, what it allows is not refused as
invalid."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Config, GenerationMode

from streams.api.openapi import OPENAPI
from streams.devtools.local_stack import SANDBOX_ALIYUN_KEY, Service
from streams.ops.shop_store import load_config_shops, publish_shops
from tests.integration.admin import SHOP, SHOP_TOKEN, call, shop_settings
from tests.integration.conftest import PLATFORM_TOKEN, RECIPIENT_KEY, Pipeline

pytestmark = pytest.mark.integration
CONFIG = {
    "checks": {
        "positive_data_acceptance": {
            # a body can follow the schema and still break a business rule that JSON Schema cannot
            # say (the shop id of the path, a keyword of another template, an 11th signature): a
            # 422 naming the field, documented for every operation with a body
            "expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429"],
        },
    },
}
SCHEMA = schemathesis.openapi.from_dict(OPENAPI, config=Config.from_dict(CONFIG))
"""the document the API serves at /openapi.json (a test checks they are the same)"""
OPERATIONS = sorted(result.ok().label for result in SCHEMA.get_all_operations())


@pytest.fixture(scope="module", autouse=True)
def the_platforms_records_restored(api: Service, pipeline: Pipeline) -> Iterator[None]:
    """The platform's token lets the generated calls register an AccessKey or a shop's WeChat app
    (with made-up secrets): afterwards the sandbox's AccessKey and the sample shops' settings are
    what the other tests expect again."""
    yield
    key_id, secret = SANDBOX_ALIYUN_KEY
    body = {"access_key_id": key_id, "secret": secret}
    assert call(api, "PUT", "/v1/platform/aliyun", PLATFORM_TOKEN, body)[0] == 200
    shops = load_config_shops(Path(pipeline.worker_env["MALL_NOTIFY_CONFIG_DIR"]))
    publish_shops(pipeline.bootstrap, pipeline.topics.settings, shops, RECIPIENT_KEY.encode())
    assert call(api, "PUT", f"/v1/shops/{SHOP}/settings", PLATFORM_TOKEN, shop_settings())[0] == 200


def test_the_api_serves_the_document_tested_here(api: Service) -> None:
    assert call(api, "GET", "/openapi.json") == (200, OPENAPI)


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("token", [PLATFORM_TOKEN, SHOP_TOKEN], ids=["platform", "shop"])
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_answer_is_what_the_openapi_document_says(
    api: Service, operation: str, token: str, data: st.DataObject
) -> None:
    mode = data.draw(st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE]))
    case = data.draw(SCHEMA.find_operation_by_label(operation).as_strategy(generation_mode=mode))
    case.call_and_validate(base_url=api.url, headers={"Authorization": f"Bearer {token}"})
