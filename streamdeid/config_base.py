"""The one strict pydantic base model and the one validation-error formatter of streamdeid.

Every settings model (the run config, the live policy, the cameras file) derives from
:class:`StrictModel`: unknown keys are errors (``extra="forbid"``) because a misspelt privacy
setting that is silently ignored leaves faces visible, and assignments are validated so a value
changed after loading (``--detect-every`` on a camera) is checked like one read from YAML.
:func:`describe_errors` turns a :class:`pydantic.ValidationError` into one line that names each
field by its dotted path, so every config error reads the same wherever it was raised.

This module imports nothing of streamdeid: the config, the live policy and the cameras file all
build on it without depending on one another.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import BaseModel, ConfigDict, ValidationError

Loc = tuple[int | str, ...]
# Maps an error location to (a prefix naming its owner, the location left to print), e.g.
# ("cameras", 2, "name") -> ("camera 'lobby': ", ("name",)).
Locate = Callable[[Loc], tuple[str, Loc]]


class StrictModel(BaseModel):
    """Base of every settings model: unknown keys and invalid assignments are errors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def describe_errors(e: ValidationError, *, prefix: str = "", locate: Locate | None = None) -> str:
    """Every error of ``e`` as ``field 'a.b': <why>, got <value>``, joined with ``; ``.

    Args:
        e: the pydantic error.
        prefix: put before every dotted path, for a model validated as part of a larger file
            (``"live."``).
        locate: rewrites each location before it is printed, e.g. to name a list entry by its
            name rather than its index.

    Cross-field checks (model validators, empty location) carry their own message naming the
    fields; it is kept as is, without pydantic's ``Value error,`` prefix.
    """
    parts = []
    for err in e.errors():
        who, loc = locate(tuple(err["loc"])) if locate else ("", tuple(err["loc"]))
        path = prefix + _dotted(loc)
        if err["type"] == "extra_forbidden":
            parts.append(f"{who}unknown field '{path}'")
        elif not loc:
            parts.append(who + str(err["msg"]).removeprefix("Value error, "))
        else:
            parts.append(f"{who}field '{path}': {err['msg']}, got {err.get('input')!r}")
    return "; ".join(parts)


def _dotted(loc: Sequence[int | str]) -> str:
    return ".".join(str(p) for p in loc)
