"""Demo data: a deterministic synthetic data set of members and their activity, as events."""

from fidelia.demo.generator import (
    DEFAULT_END,
    Dataset,
    GeneratorConfig,
    generate,
    generate_events,
    write_jsonl,
)

__all__ = [
    "DEFAULT_END",
    "Dataset",
    "GeneratorConfig",
    "generate",
    "generate_events",
    "write_jsonl",
]
