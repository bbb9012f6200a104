"""FC entry point — HTTP trigger: the review page (shared/review) over the same store as the other functions.

FC 2.0 calls an HTTP function as WSGI, `handler(environ, start_response)`, with the context in
`environ["fc.context"]`. Reviewers sign in with HTTP Basic against `FPSCREEN_REVIEWERS`
(`{"name": "sha256:<hex>"}`, see shared.review.app.password_hash); with no reviewers configured every request
is refused. `FPSCREEN_REVIEW_SECRET` keys the decision forms' tokens (shared by all instances).
"""

from collections.abc import Callable, Iterable
from typing import Any

from shared.review.function import review_handler


def handler(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    return review_handler(environ, start_response)
