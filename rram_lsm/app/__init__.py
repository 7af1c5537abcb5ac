"""The app layer: CLI, commands, experiments, backends, chip sessions, settings, benches.

The only layer that reads environment variables and settings, opens backends (chips and
ports) and pins threads; everything below it takes explicit arguments
(docs/architecture.md).
"""
__all__: list[str] = []
