"""Local harness: a functions-framework target that serves the real SCF handlers over HTTP.

Each HTTP request becomes the exact event its trigger sends: the API's routes an API gateway trigger's
(integrated-request shape, https://cloud.tencent.com/document/product/583/31927), the upload page on its own
origin a function URL's (https://cloud.tencent.com/document/product/583/96099), so both shapes are served
over HTTP. The handler's SCF response dict becomes the HTTP response: the handlers never know they are local.

    functions-framework --target gateway --source scripts/vodlocal/harness.py --port 8080
"""

from __future__ import annotations

import base64
import importlib.resources
import importlib.util
import json
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote, unquote_plus

import flask
import functions_framework

from vodtesting.events import gateway_route


def function_file(name: str) -> Path:
    """functions/<name>/index.py, wherever the project is installed (package `vodfunctions`)."""
    return Path(str(importlib.resources.files("vodfunctions") / name / "index.py"))


# path -> function name (its handler: function_file(name)). One route per deployed function, as in serverless.yml.
ROUTES: dict[str, str] = {
    "/signature": "sign",
    "/vod-events": "callback",
    "/uploads": "uploads",  # and /uploads/<fileId>
    "/upload": "upload_page",  # the page at /upload/
    "/upload/assets": "upload_page",
}

# The upload page alone at the root, as its own function URL serves it (a separate origin from the API): a
# function URL sends it every path ("*"). (functions-framework answers /favicon.ico and /robots.txt itself.)
PAGE_ROUTES: dict[str, str] = {"*": "upload_page"}

Handler = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


def load_handler(name: str, path: Path) -> Handler:
    """Import a function's index.py under a unique module name (every function's file is index.py)."""
    spec = importlib.util.spec_from_file_location(f"scf_{name}_index_{uuid.uuid4().hex[:8]}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler: Handler = module.main_handler
    return handler


def raw_path(request: flask.Request) -> str:
    """The path as the client sent it, percent-encoded, as the event carries it (the uploads function decodes a
    FileId itself): Flask's request.path is decoded already, and decoding twice would name another upload."""
    uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    return uri.partition("?")[0] if uri and uri.startswith("/") else quote(request.path)


def _body(request: flask.Request) -> tuple[str, bool]:
    """The body as the event's text, and whether that is base64 (a body that is not UTF-8)."""
    raw = request.get_data(cache=False)
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), True


def _headers(request: flask.Request) -> dict[str, str]:
    """The request's headers as the gateway's JSON event carries them: text, where WSGI hands each value over as
    its bytes read as Latin-1 (a user id in Chinese through a trusted gateway's X-User-Id, say)."""
    headers = {}
    for name, value in request.headers.items():
        try:
            headers[name] = value.encode("latin-1").decode("utf-8")
        except UnicodeError:  # not UTF-8 (or not bytes at all): as WSGI read it
            headers[name] = value
    return headers


def _gateway_query(request: flask.Request) -> dict[str, Any]:
    """The query as API gateway's event has it (a captured event: tencentyun/scf-go-lib, events/apigw_test.go): a
    name sent twice with the list of its values, a name without `=` as true."""
    query: dict[str, Any] = {}
    for part in request.query_string.decode("utf-8", "replace").split("&"):
        if part:
            encoded, has_value, value = part.partition("=")
            name, given = unquote_plus(encoded), unquote_plus(value) if has_value else True
            if name in query:
                seen = query[name]
                query[name] = [*(seen if isinstance(seen, list) else [seen]), given]
            else:
                query[name] = given
    return query


def api_gateway_event(request: flask.Request, request_id: str) -> dict[str, Any]:
    body, is_base64 = _body(request)
    route, declared_method, path_parameters = gateway_route(raw_path(request))
    event: dict[str, Any] = {
        "requestContext": {
            "serviceId": "service-local",
            "path": route,
            "httpMethod": declared_method,
            "requestId": request_id,
            "identity": {},
            "sourceIp": request.remote_addr or "127.0.0.1",
            "stage": "release",
        },
        "headers": _headers(request),
        "pathParameters": path_parameters,
        "queryStringParameters": {},  # the API's declared query parameters only: deploy/api-gateway declares none
        "headerParameters": {},
        "stageVariables": {"stage": "release"},
        "path": raw_path(request),
        "queryString": _gateway_query(request),
        "httpMethod": request.method,
        "isBase64Encoded": is_base64,
    }
    if body:  # API gateway omits the body when there is none
        event["body"] = body
    return event


def function_url_event(request: flask.Request, request_id: str) -> dict[str, Any]:
    """Only body, headers (lowercase, the client's address added), httpMethod, path and queryString: no request
    id (the context has it)."""
    body, is_base64 = _body(request)
    headers = {name.lower(): value for name, value in _headers(request).items()}
    event: dict[str, Any] = {
        "headers": {**headers, "x-scf-remote-addr": request.remote_addr or "127.0.0.1"},
        "httpMethod": request.method,
        "path": raw_path(request),
        "queryString": {k: v for k, v in request.args.items()},
        "body": body,
    }
    if is_base64:  # not what a function URL is documented to send: a body that is not text, read either way
        event["isBase64Encoded"] = True
    return event


def scf_context(function_name: str, request_id: str) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "function_name": function_name,
        "function_version": "$LATEST",
        "namespace": "default",
        "memory_limit_in_mb": 128,
        "time_limit_in_ms": 5000,
        "tencentcloud_region": "ap-guangzhou",
        "tencentcloud_appid": "1250000000",
        "tencentcloud_uin": "100000000001",
    }


def to_flask(result: Mapping[str, Any]) -> flask.Response:
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
    response = flask.Response(data, status=int(result["statusCode"]), headers=dict(result.get("headers") or {}))
    if not any(k.lower() == "content-type" for k in result.get("headers") or {}):
        del response.headers["Content-Type"]  # Flask would claim text/html for an empty body
    return response


def close_stores(handlers: Iterable[Handler | Exception]) -> None:
    """Close the stores the loaded functions opened (their connections; SQLite's files), as their containers'
    ends would: else they stay open until the garbage collector finds them, perhaps in another test."""
    for handler in handlers:
        store = getattr(getattr(handler, "__wrapped__", handler), "__globals__", {}).get("STORE")
        if store is not None:
            store.max_idle_connections = 0  # a request still running (a long poll) closes its own when it ends
            store.close()


class Gateway:
    """Routes requests to the functions: `containers` (name -> handler, or the error its cold start raised), each
    request made into the event `trigger` makes."""

    def __init__(
        self,
        routes: Mapping[str, str],
        containers: Mapping[str, Handler | Exception],
        trigger: Callable[[flask.Request, str], dict[str, Any]] = api_gateway_event,
    ) -> None:
        self._routes = dict(routes)
        self._containers = containers
        self._trigger = trigger

    def _handler(self, path: str) -> tuple[str, Handler] | None:
        name = (
            self._routes.get(path.rstrip("/") or "/")
            or self._routes.get(path.rsplit("/", 1)[0])
            or self._routes.get("*")
        )
        if name is None:
            return None
        loaded = self._containers[name]
        if isinstance(loaded, Exception):  # its cold start failed: so does every request, as in SCF
            raise RuntimeError(f"the {name} function failed to start: {loaded}") from loaded
        return name, loaded

    def __call__(self, request: flask.Request) -> flask.Response:
        found = self._handler(raw_path(request))  # /uploads/a%2Fb is an upload, not a route of its own
        if found is None:
            # Not "not_found": that is a function's answer about a resource (the uploads function's "no such
            # upload"); a path no function serves is a wrong URL, as a real gateway's 404 would say.
            error = {"error": {"code": "no_route", "message": f"no function at {request.path}"}}
            return flask.Response(json.dumps(error), status=404, content_type="application/json")
        name, handler = found
        request_id = str(uuid.uuid4())
        return to_flask(handler(self._trigger(request, request_id), scf_context(name, request_id)))


def _start_containers() -> dict[str, Handler | Exception]:
    """Every routed function loaded now (a warm container each), under the environment as it is now."""
    containers: dict[str, Handler | Exception] = {}
    for name in dict.fromkeys([*ROUTES.values(), *PAGE_ROUTES.values()]):
        try:
            containers[name] = load_handler(name, function_file(name))
        except Exception as exc:  # a bad setting, say: the function's requests fail with it
            containers[name] = exc
    return containers


# functions-framework runs this file as its app's source (as module "harness", not "vodlocal.harness"): the
# functions start with the app, under the environment it starts with, not at their first request, when a test
# (or another thread) may have changed the environment.
_gateways: dict[str, Gateway] = {}
if __name__ != "vodlocal.harness":
    _containers = _start_containers()
    _gateways = {
        "gateway": Gateway(ROUTES, _containers),
        "upload_page": Gateway(PAGE_ROUTES, _containers, function_url_event),  # as deployed, on its own URL
    }


def _serve(target: str, request: flask.Request) -> flask.Response:
    return _gateways[target](request)


@functions_framework.http
def gateway(request: flask.Request) -> flask.Response:
    return _serve("gateway", request)


@functions_framework.http
def upload_page(request: flask.Request) -> flask.Response:
    return _serve("upload_page", request)


_MODULE_NAME = Path(__file__).stem  # what functions-framework names the module it loads from this file


def create_app(target: str = "gateway") -> flask.Flask:
    """The functions-framework app serving `target` (gateway or upload_page), as the CLI would build it.

    functions-framework loads this file again, as a top-level module named after it, and adds its directory to
    sys.path: both are put back, so that an app's own `harness` module, tested beside a stack, stays its own."""
    path, module = list(sys.path), sys.modules.get(_MODULE_NAME)
    try:
        app: flask.Flask = functions_framework.create_app(target, __file__, "http")  # type: ignore[no-untyped-call]
        app.extensions["vod_functions"] = getattr(sys.modules.get(_MODULE_NAME), "_containers", {})  # close_stores
    finally:
        sys.path[:] = path
        if module is None:
            sys.modules.pop(_MODULE_NAME, None)
        else:
            sys.modules[_MODULE_NAME] = module
    return app
