"""What the admin API and the receipts endpoint answer when they refuse a request before a handler
of theirs could: a JSON ``{"problems": [...]}`` like every other refusal, not aiohttp's text.

aiohttp's HTTP parser answers a request line or header over its limits with a text 400 before any
application code runs; the limits are raised to :data:`PARSER_LIMIT_BYTES` so that a long URL
reaches :func:`problems_as_json`, which refuses one over :data:`MAX_URL_BYTES` (414) as JSON.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from streams.api.context import BODY_SECONDS, Handler, problem, quote
from streams.logs import get_logger

log = get_logger("api")
MAX_URL_BYTES = 8 * 1024
PARSER_LIMIT_BYTES = 64 * 1024
HANDLER_ARGS: dict[str, Any] = {"max_line_size": PARSER_LIMIT_BYTES, "max_field_size": PARSER_LIMIT_BYTES}
"""for ``web.run_app`` (its keyword arguments go to the request handler): what aiohttp's parser lets
through to the middleware"""


@web.middleware
async def problems_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own refusals (404 no such path, 405, 408, 413 body too large), a URL over
    :data:`MAX_URL_BYTES` (414) and a bug (500) as JSON problems too."""
    if len(request.raw_path) > MAX_URL_BYTES:
        return problem(414, f"the URL is longer than {MAX_URL_BYTES // 1024} KiB")
    try:
        return await handler(request)
    except web.HTTPException as refusal:
        if refusal.status < 400:
            raise
        messages = {
            404: f"no such resource: {quote(request.path)}",
            405: f"{request.method} is not allowed on {quote(request.path)}",
            408: f"the body did not arrive within {BODY_SECONDS:.0f} s",
            413: f"the body is too large: {refusal.text}",
        }
        answer = problem(refusal.status, messages.get(refusal.status, refusal.reason))
        if isinstance(refusal, web.HTTPMethodNotAllowed):
            answer.headers["Allow"] = ", ".join(sorted(refusal.allowed_methods))
        return answer
    except Exception:  # a bug: logged, and answered as JSON like everything else
        log.exception("a request failed", extra={"path": quote(request.path)})
        return problem(500, "internal error: the log says more")
