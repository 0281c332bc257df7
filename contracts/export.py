"""Generate `contracts/schemas/*.json` from the models."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from contracts import CONTRACTS, SCHEMA_VERSION, Envelope, Person

SCHEMA_DIR = Path(__file__).parent / "schemas"


def schema_documents() -> dict[str, str]:
    models: dict[str, type[BaseModel]] = {"Envelope": Envelope, "Person": Person, **CONTRACTS}
    documents = {}
    for name, model in sorted(models.items()):
        schema = model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"urn:gateway:contracts:{name}:{SCHEMA_VERSION}"
        schema["x-schema-version"] = SCHEMA_VERSION
        documents[f"{name}.json"] = json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    return documents


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, text in schema_documents().items():
        path = directory / file_name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_schemas():
        print(path)
