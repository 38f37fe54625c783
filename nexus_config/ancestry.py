"""Parent chains: the one walk up from an organization to its root, which every stage needs.

Inherited steps, batches of a tree, shards, families applied together and exports all ask "who are
this organization's ancestors?"; a cycle or a parent outside what the caller knows ends the walk.
"""

from __future__ import annotations

from collections.abc import Callable, Container

__all__ = ["lineage"]


def lineage(
    slug: str, parent_of: Callable[[str], str | None], known: Container[str] | None = None
) -> list[str]:
    """`slug`, its parent, grandparent… up to the root: a cycle, or a parent not in `known`, stops it."""
    chain = [slug]
    seen = {slug}
    while (parent := parent_of(chain[-1])) and parent not in seen and (known is None or parent in known):
        chain.append(parent)
        seen.add(parent)
    return chain
