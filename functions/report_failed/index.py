"""FC entry point — timer trigger: report failed jobs with ReportFpShotJobResult; re-query stuck jobs."""

from typing import Any

from shared.handlers import report_failed


def handler(event: bytes, context: Any) -> str:
    return report_failed(event, context)
