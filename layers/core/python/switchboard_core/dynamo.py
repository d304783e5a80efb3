"""Small DynamoDB helpers shared by the stores."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def scan_all(table: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item of a (small) table, following LastEvaluatedKey across pages."""
    while True:
        page = table.scan(**kwargs)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
