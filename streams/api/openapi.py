"""The OpenAPI 3.1 document of the admin API, built from the same pydantic models it speaks."""

from __future__ import annotations

from openapi_pydantic import Info, MediaType, OpenAPI, Operation, PathItem, RequestBody, Response
from openapi_pydantic.util import PydanticSchema, construct_open_api_with_schema_class
from pydantic import BaseModel

from streams.core.catalog import Catalog
from streams.core.shops import ShopRules


class Problems(BaseModel):
    problems: list[str]


def openapi_document() -> OpenAPI:
    def json_of(model: type[BaseModel]) -> dict[str, MediaType]:
        return {"application/json": MediaType(media_type_schema=PydanticSchema(schema_class=model))}

    refused = {
        "401": Response(description="no valid bearer token"),
        "403": Response(description="the token may not reach this shop"),
    }
    settings_path = PathItem(
        get=Operation(
            summary="A shop's settings",
            responses={
                "200": Response(description="the settings", content=json_of(ShopRules)),
                **refused,
                "404": Response(description="no settings yet", content=json_of(Problems)),
            },
        ),
        put=Operation(
            summary="Save a shop's settings (validated; workers apply them to the next event)",
            requestBody=RequestBody(content=json_of(ShopRules), required=True),
            responses={
                "200": Response(description="saved", content=json_of(ShopRules)),
                **refused,
                "422": Response(
                    description="refused: every problem, naming its field", content=json_of(Problems)
                ),
            },
        ),
    )
    document = OpenAPI(
        info=Info(title="mall-notify admin API", version="1"),
        paths={
            "/v1/catalog": PathItem(
                get=Operation(
                    summary="The notification catalog",
                    responses={"200": Response(description="scenes", content=json_of(Catalog)), **refused},
                )
            ),
            "/v1/shops/{shop_id}/settings": settings_path,
            "/v1/shops/{shop_id}/scenes/{scene}/{channel}/enable": PathItem(
                post=Operation(
                    summary="Turn a scene on (an OA default template is added to the shop's OA)",
                    responses={
                        "200": Response(description="saved", content=json_of(ShopRules)),
                        **refused,
                        "422": Response(description="refused", content=json_of(Problems)),
                        "502": Response(description="WeChat refused", content=json_of(Problems)),
                    },
                )
            ),
            "/v1/shops/{shop_id}/scenes/{scene}/{channel}/disable": PathItem(
                post=Operation(
                    summary="Turn a scene off",
                    responses={"200": Response(description="saved", content=json_of(ShopRules)), **refused},
                )
            ),
            "/v1/shops/{shop_id}/templates": PathItem(
                get=Operation(
                    summary="The templates the shop's Official Account holds, and the scenes using each",
                    responses={"200": Response(description="templates"), **refused},
                )
            ),
            "/v1/shops/{shop_id}/templates/{template_id}": PathItem(
                delete=Operation(
                    summary="Delete a template from the shop's OA; scenes using it are turned off",
                    responses={
                        "200": Response(description="saved", content=json_of(ShopRules)),
                        **refused,
                        "502": Response(description="WeChat refused", content=json_of(Problems)),
                    },
                )
            ),
        },
    )
    return construct_open_api_with_schema_class(document)


OPENAPI = openapi_document().model_dump(mode="json", by_alias=True, exclude_none=True)
