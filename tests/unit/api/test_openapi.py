"""The OpenAPI 3.1 document: the committed file is the one the API serves."""

from __future__ import annotations

import json
from pathlib import Path

from hub.api.app import openapi_document

COMMITTED = Path(__file__).resolve().parents[3] / "schemas" / "api-openapi.json"


def test_the_committed_openapi_document_is_the_one_the_api_serves() -> None:
    # Regenerate with: hub api openapi -o schemas/api-openapi.json
    assert json.loads(COMMITTED.read_text(encoding="utf-8")) == openapi_document()


def test_the_document_is_openapi_3_1_and_every_operation_documents_its_errors() -> None:
    doc = openapi_document()
    assert doc["openapi"].startswith("3.1")
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            for code in ("401", "404", "422", "429", "500", "503"):
                ref = operation["responses"][code]["content"]["application/json"]["schema"]
                assert ref == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, code)
            assert operation["security"] == [{"mutualTLS": []},
                                             {"systemId": [], "systemSecret": []}]


def test_the_send_operation_takes_the_packet_bytes_as_xml() -> None:
    send = openapi_document()["paths"]["/api/v1/edocs"]["post"]
    assert send["requestBody"]["content"] == {
        "application/xml": {"schema": {"type": "string", "format": "binary"}}}
