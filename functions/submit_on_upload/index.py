"""FC entry point — OSS trigger (oss:ObjectCreated:*): submit a SubmitFpShotJob per new object version."""

from typing import Any

from shared.handlers import submit_on_upload


def handler(event: bytes, context: Any) -> str:
    return submit_on_upload(event, context)
