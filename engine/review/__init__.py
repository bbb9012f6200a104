"""The review page on the local stack: `fpscreen review` (serve shared/review over waitress) and thumbnails cut
with PyAV from the directory bucket (local path only: the review function has no PyAV)."""
