"""plan_apply: the actual state and the engine: database, records, diff, plan, renderers, apply, CLI."""

__all__: list[str] = []
