"""Verdicts people can trust and act on: match evidence (`evidence`), per-library match policies (`policy`)
and the service that decides, records reviewers' decisions and applies actions (`service`)."""
