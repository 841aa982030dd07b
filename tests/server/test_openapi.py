"""server/openapi.yaml: valid OpenAPI 3.1, in step with the route table, and served at /openapi.json."""

from __future__ import annotations

import copy
import re

import pytest
import tornado.web
import yaml
from openapi_spec_validator import OpenAPIV31SpecValidator

from handlers.health import API_VERSION
from handlers.openapi import OPENAPI_PATH, openapi_document
from server.app import ROUTES

HTTP_METHODS = ("get", "head", "post", "put", "patch", "delete")
# Every endpoint but these needs the database, and so can answer 503.
WITHOUT_DATABASE = {"/", "/healthz", "/openapi.json", "/docs", "/metrics"}


def openapi_path(route_pattern: str) -> str:
    """`/video/(?P<video_id>[^/]+)/stream` -> `/video/{video_id}/stream`."""
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route_pattern)
    path = re.sub(r"\\(.)", r"\1", path)  # `\.` -> `.`
    assert not re.search(r"[()\[\]*+?^$\\]", path), f"cannot turn {route_pattern!r} into an OpenAPI path"
    return path


def implemented_methods(handler: type[tornado.web.RequestHandler]) -> set[str]:
    """The methods a handler serves (BaseHandler's CORS `options` aside): those it defines
    itself rather than inheriting Tornado's 405 placeholder, as handlers/methods.py decides.
    HEAD, served wherever GET is (KnownMethods.head), is not repeated in the document."""
    return {m for m in HTTP_METHODS if m != "head"
            and getattr(handler, m) is not getattr(tornado.web.RequestHandler, m)}


@pytest.fixture
def document() -> dict:
    return copy.deepcopy(openapi_document())


def operations(document: dict):
    for path, item in document["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield path, method, item[method]


def test_openapi_path_conversion():
    assert openapi_path(r"/video/(?P<video_id>[^/]+)/stream") == "/video/{video_id}/stream"
    assert openapi_path(r"/openapi\.json") == "/openapi.json"
    assert openapi_path(r"/") == "/"


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1.")
    OpenAPIV31SpecValidator(document).validate()


def test_the_document_describes_the_running_version(document):
    assert document["info"]["version"] == API_VERSION


def test_the_paths_are_the_route_table(document):
    routes = [openapi_path(pattern) for pattern, _ in ROUTES]
    assert len(routes) == len(set(routes))
    assert set(document["paths"]) == set(routes)


@pytest.mark.parametrize(("pattern", "handler"), ROUTES, ids=[pattern for pattern, _ in ROUTES])
def test_the_operations_are_the_methods_each_handler_implements(document, pattern, handler):
    path_item = document["paths"][openapi_path(pattern)]
    documented = {method for method in HTTP_METHODS if method in path_item}
    assert documented == implemented_methods(handler)


@pytest.mark.parametrize(("pattern", "handler"), ROUTES, ids=[pattern for pattern, _ in ROUTES])
def test_security_matches_requires_auth(document, pattern, handler):
    for method, operation in document["paths"][openapi_path(pattern)].items():
        if method in HTTP_METHODS:
            security = operation.get("security", document["security"])
            assert security == ([{"bearerAuth": []}] if handler.requires_auth else []), (pattern, method)
            if handler.requires_auth:
                assert "401" in operation["responses"], (pattern, method)


def test_the_bearer_scheme_is_a_jwt(document):
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        **document["components"]["securitySchemes"]["bearerAuth"],
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
    }


def _resolve(document: dict, node: dict) -> dict:
    while "$ref" in node:
        target = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_every_error_is_the_error_schema(document):
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                content = _resolve(document, response)["content"]
                assert content == {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}, \
                    (path, method, status)
    assert document["components"]["schemas"]["Error"]["required"] == ["error"]
    assert document["components"]["schemas"]["Error"]["additionalProperties"] is False


def test_every_operation_documents_its_general_failures(document):
    for path, method, operation in operations(document):
        responses = operation["responses"]
        assert "500" in responses, (path, method)
        assert ("503" in responses) == (path not in WITHOUT_DATABASE), (path, method)
        # Every operation that reads a body (every POST, and a DELETE with one).
        assert ("413" in responses) == (method == "post" or "requestBody" in operation), (path, method)
        for status in ("429", "503"):
            if status in responses:
                headers = _resolve(document, responses[status])["headers"]
                assert _resolve(document, headers["Retry-After"])["required"] is True, (path, method, status)


@pytest.fixture
def document_on_disk() -> dict:
    with open(OPENAPI_PATH, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.mark.gen_test
async def test_get_openapi_json_serves_the_document(api, document_on_disk):
    reply = await api.get("/openapi.json")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert reply.json == document_on_disk


@pytest.mark.gen_test
async def test_openapi_json_needs_no_login_and_refuses_other_methods(api):
    reply = await api.post("/openapi.json", {})
    assert reply.status == 405
    assert reply.error
