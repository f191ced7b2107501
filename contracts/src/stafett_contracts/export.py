"""Write the published artefacts of the contracts: JSON Schema per event, and golden files.

    python -m stafett_contracts.export          write schemas/, and golden/ files that are missing
    python -m stafett_contracts.export --check  exit 1 if a committed schema differs from the code

Schemas are derived from the code and rewritten each time, with `format: date-time` on every
date-time field (msgspec leaves it out unless the field insists on a time zone, and events keep
decoding the times they always did) beside msgspec's `date` and `uuid` formats. Golden files are
written once, from a generated example, and then frozen: a test decodes each and encodes it
again byte for byte, so a change to the wire format cannot pass unnoticed.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, uuid5

import msgspec
import msgspec.inspect as mi

from stafett_contracts.catalogue import EVENTS
from stafett_contracts.envelope import Event, type_name, version_of
from stafett_contracts.personal import SealedText

CONTRACTS_DIR = Path(__file__).resolve().parents[2]


def file_name(cls: type[Event]) -> str:
    return f"{cls.CONTEXT}/{type_name(cls)}.v{version_of(cls)}.json"


def schema_components(
    types: Sequence[type[Event]], ref_template: str = "#/$defs/{name}"
) -> tuple[tuple[dict[str, Any], ...], dict[str, Any]]:
    """msgspec's JSON Schema of `types` (each a `$ref` into the components), with formats."""
    schemas, components = msgspec.json.schema_components(types, ref_template=ref_template)
    seen: set[type] = set()
    for info in mi.multi_type_info(types):
        _add_formats(info, {}, components, seen)
    return schemas, components


def _add_formats(
    t: mi.Type, node: dict[str, Any], components: dict[str, Any], seen: set[type]
) -> None:
    """Mark each date-time in `node` (the schema of `t`), and in the structs `t` refers to."""
    match t:
        case mi.Metadata():
            _add_formats(t.type, node, components, seen)
        case mi.DateTimeType() if node.get("type") == "string":
            node.setdefault("format", "date-time")
        case mi.StructType():
            if t.cls in seen:
                return
            seen.add(t.cls)
            component = components.get(t.cls.__name__, {})
            if "description" in component:  # msgspec keeps the docstring's indentation
                component["description"] = inspect.cleandoc(component["description"])
            properties = component.get("properties", {})
            for field in t.fields:
                _add_formats(field.type, properties.get(field.encode_name, {}), components, seen)
        case mi.UnionType():
            # Each member is one of `anyOf`, or the node itself when None alone is beside it.
            members = [m for m in t.types if not isinstance(m, mi.NoneType)]
            options = node.get("anyOf", [node])
            for member in members:
                for option in options:
                    if _shape_of(member) == option.get("type", "object"):
                        _add_formats(member, option, components, seen)
        case mi.ListType() | mi.VarTupleType() | mi.SetType() | mi.FrozenSetType():
            _add_formats(t.item_type, node.get("items", {}), components, seen)
        case mi.DictType():
            _add_formats(t.value_type, node.get("additionalProperties", {}), components, seen)


def _shape_of(t: mi.Type) -> str:
    """The JSON Schema `type` a member of a union is written as (`object` for a `$ref`)."""
    while isinstance(t, mi.Metadata):
        t = t.type
    if isinstance(t, mi.StrType | mi.DateTimeType | mi.DateType | mi.UUIDType):
        return "string"
    if isinstance(t, mi.ListType | mi.VarTupleType | mi.SetType | mi.FrozenSetType):
        return "array"
    return "object"


def schema_of(cls: type[Event]) -> bytes:
    (schema,), components = schema_components([cls])
    schema = {**schema, "$defs": components}
    schema["$id"] = f"https://stafett.example/schemas/{file_name(cls)}"
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"


def schemas() -> dict[str, bytes]:
    return {f"schemas/{file_name(cls)}": schema_of(cls) for cls in EVENTS.values()}


def example_of(cls: type[Event]) -> Event:
    """An instance with a plausible value in every field, made from the type alone."""
    value = _example(mi.type_info(cls), cls.__name__)
    assert isinstance(value, Event)
    return value


def _example(t: mi.Type, name: str) -> Any:
    match t:
        case mi.Metadata():
            return _example(t.type, name)
        case mi.StructType():
            return t.cls(**{f.name: _example(f.type, f.name) for f in t.fields})
        case mi.UnionType():
            # Free text about a child is sealed in every new event: the example shows it so.
            members: list[mi.Type] = [
                x for x in t.types if isinstance(x, mi.StructType) and x.cls is SealedText
            ]
            members = members or [x for x in t.types if not isinstance(x, mi.NoneType)]
            return _example(members[0], name)
        case mi.LiteralType():
            return t.values[0]
        case mi.EnumType():
            return next(iter(t.cls))
        case mi.VarTupleType() | mi.ListType():
            return (_example(t.item_type, name),)
        case mi.DictType():
            return {_example(t.key_type, name): _example(t.value_type, name)}
        case mi.StrType():
            return (
                "0" * 64
                if t.pattern and "0-9a-f" in t.pattern
                else f"example-{name.lower().replace('_', '-')}"
            )
        case mi.IntType():
            return t.ge if t.ge is not None else 1
        case mi.BoolType():
            return True
        case mi.UUIDType():
            return uuid5(NAMESPACE_URL, f"stafett:{name}")
        case mi.DateTimeType():
            return datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
        case mi.DateType():
            return date(2026, 11, 2)
    raise TypeError(f"no example for {t!r} ({name})")


def golden_of(cls: type[Event]) -> bytes:
    return msgspec.json.format(msgspec.json.encode(example_of(cls)), indent=2) + b"\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    parser.add_argument("--dir", type=Path, default=CONTRACTS_DIR, help="the contracts folder")
    args = parser.parse_args(argv)

    stale = [p for p, data in schemas().items() if _read(args.dir / p) != data]
    if args.check:
        for path in stale:
            print(f"out of date: {path} (run python -m stafett_contracts.export)", file=sys.stderr)
        return 1 if stale else 0
    for path, data in schemas().items():
        _write(args.dir / path, data)
    for cls in EVENTS.values():
        golden = args.dir / "golden" / file_name(cls)
        if not golden.exists():
            _write(golden, golden_of(cls))
    print(f"wrote {len(EVENTS)} schemas under {args.dir / 'schemas'}")
    return 0


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


if __name__ == "__main__":
    sys.exit(main())
