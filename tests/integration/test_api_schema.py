"""Schemathesis against the admin API on the real broker: each operation of the published OpenAPI
document, called with what the document allows and with what it does not, as the platform and as a
shop. No answer is a 5xx, and every answer is what the document says (status, content type,
headers, body schema); what the document refuses is refused, what it allows is not refused as
invalid."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Config, GenerationMode

from streams.api.openapi import OPENAPI
from streams.devtools.local_stack import Service
from tests.integration.admin import SHOP_TOKEN, call
from tests.integration.conftest import PLATFORM_TOKEN

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
