"""FC entry point — MNS topic trigger: store the authoritative result of a finished fingerprint job."""

from typing import Any

from shared.handlers import store_results


def handler(event: bytes, context: Any) -> str:
    return store_results(event, context)
