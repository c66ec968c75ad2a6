"""``Headers``: the header fields of a response, as errors and ``EventSource.response_headers``
give them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Union

__all__ = ["Headers"]


class Headers(Mapping[str, str]):
    """The header fields of an HTTP response: a read-only mapping with case-insensitive names.

    ``headers["Retry-After"]``, ``headers.get("x-request-id")`` and ``"content-type" in headers``
    ignore case. A name sent several times maps to its values joined by ``", "`` (as the Fetch
    standard's ``Headers.get``); ``get_list(name)`` gives each value and ``multi_items()`` every
    field as received, in order. Names are lowercase. Iteration yields each name once, in the
    order of its first field. Empty when there was no response.
    """

    __slots__ = ("_fields", "_joined")

    _fields: tuple[tuple[str, str], ...]
    _joined: dict[str, str]

    def __init__(
        self, fields: Union[Mapping[str, str], Iterable[tuple[str, str]], None] = None
    ) -> None:
        items: Iterable[tuple[str, str]]
        if fields is None:
            items = ()
        elif isinstance(fields, Headers):
            items = fields.multi_items()
        elif isinstance(fields, Mapping):
            items = fields.items()
        else:
            items = fields
        out: list[tuple[str, str]] = []
        joined: dict[str, str] = {}
        for name, value in items:
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError(f"header name and value must be str, got {(name, value)!r}")
            name = name.lower()
            out.append((name, value))
            joined[name] = f"{joined[name]}, {value}" if name in joined else value
        object.__setattr__(self, "_fields", tuple(out))
        object.__setattr__(self, "_joined", joined)

    def __getitem__(self, name: str) -> str:
        if not isinstance(name, str):
            raise KeyError(name)
        return self._joined[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._joined)

    def __len__(self) -> int:
        return len(self._joined)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._joined

    def get_list(self, name: str) -> list[str]:
        """Every value of ``name`` (any case), in the order received; ``[]`` if none."""
        key = name.lower()
        return [v for n, v in self._fields if n == key]

    def multi_items(self) -> list[tuple[str, str]]:
        """Every field as ``(lowercase name, value)``, in the order received."""
        return list(self._fields)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Headers is read-only")

    def __repr__(self) -> str:
        return f"Headers({list(self._fields)!r})"

    def __reduce__(self) -> tuple[type[Headers], tuple[list[tuple[str, str]]]]:
        return (Headers, (list(self._fields),))
