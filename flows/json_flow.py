"""The toolkit's flows: Prefect flows whose parameters are stored as JSON without FastAPI.

Prefect stores a flow run's parameters (shown in the UI) after converting them with
FastAPI's ``jsonable_encoder``, importing FastAPI for it on the first run of a
process: ~0.3 s of a small command's ~2 s, about a fifth of what the toolkit adds
to a two-step spec next to yadage. Our parameters are JSON values, paths and
pydantic models, which pydantic (already loaded with Prefect) converts the same
way; values it cannot convert are stored as ``<TypeName>``, as Prefect does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from prefect import Flow
from prefect.futures import PrefectFuture
from prefect.states import State
from pydantic_core import to_jsonable_python

__all__ = ["JsonParameterFlow", "json_flow"]

P = ParamSpec("P")
R = TypeVar("R")


class JsonParameterFlow(Flow[P, R]):
    """A :class:`prefect.Flow` that converts its parameters to JSON with pydantic."""

    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """The parameters as stored with the flow run (futures and states as placeholders)."""
        return {name: _stored_value(value) for name, value in parameters.items()}

    def with_options(self, *args: Any, **options: Any) -> JsonParameterFlow[P, R]:
        """Prefect's :meth:`Flow.with_options`, keeping this class (Prefect's builds a plain ``Flow``)."""
        configured = super().with_options(*args, **options)
        configured.__class__ = JsonParameterFlow
        return configured  # type: ignore[return-value]


def json_flow(**options: Any) -> Callable[[Callable[P, R]], JsonParameterFlow[P, R]]:
    """Like ``@prefect.flow(**options)``, making a :class:`JsonParameterFlow`."""

    def decorate(function: Callable[P, R]) -> JsonParameterFlow[P, R]:
        return JsonParameterFlow(function, **options)

    return decorate


def _stored_value(value: Any) -> Any:
    if isinstance(value, (PrefectFuture, State)):
        return f"<{type(value).__name__}>"
    try:
        return to_jsonable_python(value)
    except Exception:  # anything pydantic cannot convert, as Prefect does with FastAPI's encoder
        return f"<{type(value).__name__}>"
