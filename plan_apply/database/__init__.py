"""The platform database: its tables (`tables`) and how nexus connects to it (`engine`)."""

__all__: list[str] = []
