"""docs/contract.schema.json is the contract model's JSON Schema written out: editors and CI checks
that validate a contract against it must see what the loader accepts."""

from __future__ import annotations

import json
from pathlib import Path

from chaos.contract.model import json_schema

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "contract.schema.json"


def test_the_published_schema_is_the_model_s():
    published = json.loads(SCHEMA_FILE.read_text())
    assert published == json_schema(), "regenerate docs/contract.schema.json from chaos.contract.model.json_schema()"


def test_the_schema_refuses_unknown_keys_and_names_the_required_ones():
    schema = json_schema()
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["name", "start"]
