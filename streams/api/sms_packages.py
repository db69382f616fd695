"""The admin API's SMS packages: listed to everyone with a token, managed by the platform at run
time (create, change the price or name, retire), each change written to ``notify.sms.packages``
and audited (:mod:`streams.core.sms_packages`). Purchases keep their package as it was."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from aiohttp import web

from streams.api.bodies import PackageChange, PackageRequest
from streams.api.context import CONTEXT, WHO, ApiContext, acknowledged, audit, problem, read_body
from streams.core.sms_packages import PackageShelf, change, create, package_record, retire
from streams.core.sms_quota import Package
from streams.core.sms_signatures import Refused
from streams.core.tokens import PLATFORM
from streams.runtime.kafka.records import Write

PLATFORM_ONLY = "the SMS packages are the platform's to change (platform token)"


async def get_packages(request: web.Request) -> web.Response:
    """The packages on sale."""
    shelf = request.app[CONTEXT].sms.packages
    return web.json_response([package.model_dump(mode="json") for package in shelf.values()])


async def _saved(context: ApiContext, package: Package, what: str, status: int = 200) -> web.Response:
    refusal = await acknowledged(
        context, [Write(context.sms.packages_topic, *package_record(package))], "package"
    )
    if refusal is not None:
        return refusal
    context.sms.packages.apply(*package_record(package))  # read your own write
    audit.info(f"SMS package {what}", extra={"package": package.model_dump(mode="json")})
    return web.json_response(package.model_dump(mode="json"), status=status)


async def _changed(
    request: web.Request, made: Callable[[PackageShelf, str], Package], what: str, status: int = 200
) -> web.Response:
    context = request.app[CONTEXT]
    if request[WHO] != PLATFORM:
        return problem(403, PLATFORM_ONLY)
    try:
        package = made(context.sms.packages, request[WHO])
    except Refused as exc:
        return problem(409, str(exc))
    return await _saved(context, package, what, status)


async def create_package(request: web.Request) -> web.Response:
    body = await read_body(request, PackageRequest)
    if isinstance(body, web.Response):
        return body
    draft = Package(**body.model_dump())
    return await _changed(
        request, lambda shelf, who: create(shelf, draft, datetime.now(UTC), who), "created", 201
    )


async def change_package(request: web.Request) -> web.Response:
    body = await read_body(request, PackageChange)
    if isinstance(body, web.Response):
        return body
    package_id = request.match_info["package_id"]
    return await _changed(
        request,
        lambda shelf, who: change(
            shelf, package_id, datetime.now(UTC), who, price_fen=body.price_fen, name=body.name
        ),
        "changed",
    )


async def retire_package(request: web.Request) -> web.Response:
    package_id = request.match_info["package_id"]
    return await _changed(
        request, lambda shelf, who: retire(shelf, package_id, datetime.now(UTC), who), "retired"
    )


PACKAGE = "/v1/sms/packages/{package_id:[a-z0-9_-]{1,32}}"
ROUTES = [
    web.get("/v1/sms/packages", get_packages),
    web.post("/v1/sms/packages", create_package),
    web.patch(PACKAGE, change_package),
    web.post(f"{PACKAGE}/retire", retire_package),
]
