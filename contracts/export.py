"""Generate `contracts/schemas/*.json` from the models.

The committed schemas are the built-in contracts'; `gateway contracts export --directory D`
passes the registered plugins' contracts too (`extra`), written beside them in D.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel

from contracts import CONTRACTS, SCHEMA_VERSION, Envelope, Person

SCHEMA_DIR = Path(__file__).parent / "schemas"


def schema_documents(extra: Mapping[str, type[BaseModel]] | None = None) -> dict[str, str]:
    """File name -> JSON Schema text of Envelope, Person, the built-in contracts and `extra`."""
    models: dict[str, type[BaseModel]] = {"Envelope": Envelope, "Person": Person, **CONTRACTS, **(extra or {})}
    documents = {}
    for name, model in sorted(models.items()):
        schema = model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"urn:gateway:contracts:{name}:{SCHEMA_VERSION}"
        schema["x-schema-version"] = SCHEMA_VERSION
        documents[f"{name}.json"] = json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    return documents


def write_schemas(directory: Path = SCHEMA_DIR, extra: Mapping[str, type[BaseModel]] | None = None) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, text in schema_documents(extra).items():
        path = directory / file_name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_schemas():
        print(path)
