"""Accuracy evaluation: a deterministic corpus of references, transformed copies and negatives, run through the
engine's public job interface (and through peers when installed), scored per modality and per transform.

- `corpus`: builds (and caches) the media and the ground truth from a seed; `transforms`: the edits applied.
- `metrics`: detection recall/precision, the VCSL segment metric, slice-boundary time error.
- `runner`: the `scripts/eval` command; `report`: the printed table and the JSON document.
- `peers`: Meta's vPDQ (video) and Chromaprint's fpcalc (audio), each optional.
"""
