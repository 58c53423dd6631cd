"""The ledger's one registry: which builder describes which block type, VAE family or text-encoder kind.

Builders register themselves where they are defined (``@register("dit_block", "full", "spatial")``); a second
registration of a name is an error, as in torch's ``register_flop_formula``. Nothing outside the ledger keeps a
table of families: evaluators and planners ask the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from difflib import get_close_matches
from typing import Any, TypeVar

__all__ = ["register", "lookup", "registered"]

F = TypeVar("F", bound=Callable[..., Any])

_REGISTRY: dict[tuple[str, str], Callable[..., Any]] = {}


def register(component: str, *names: str) -> Callable[[F], F]:
    """Decorator: ``fn`` builds the ledger of ``component`` (``dit_block``, ``dit_text``, ``vae``, ``vae_chunked``,
    ``vae_frame_batch``, ``vae_encode_chunked``, ``vae_encode_frame_batch``, ``text_encoder``; calibration's
    ``reference_text_encoder`` builds the PyTorch module) for each of ``names``."""
    def deco(fn: F) -> F:
        for name in names:
            if (component, name) in _REGISTRY:
                raise ValueError(f"{component} {name!r} is registered twice ({_REGISTRY[component, name].__name__} "
                                 f"and {fn.__name__})")
            _REGISTRY[component, name] = fn
        return fn
    return deco


def registered(component: str) -> tuple[str, ...]:
    """Names registered for ``component``, sorted."""
    return tuple(sorted(n for c, n in _REGISTRY if c == component))


def lookup(component: str, name: str) -> Callable[..., Any]:
    """The builder of ``name``; an unknown name is an error that lists the close ones."""
    try:
        return _REGISTRY[component, name]
    except KeyError:
        known = registered(component)
        close = get_close_matches(name, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(known)}"
        raise KeyError(f"no {component} ledger builder for {name!r}{hint}") from None
