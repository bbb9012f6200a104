"""The review page: uploads with their verdicts (filters: verdict, library, date), a detail view with the match
evidence (timeline per modality, thumbnails at aligned times when a thumbnail source is given, text passages
with the copied spans marked) and the reviewer's decisions (confirm, dismiss, allow-list), which flow back into
the verdict and its actions through `VerdictService`.

A Flask WSGI app, so the same code serves `fpscreen review` (waitress, loopback) and the `review` function (an
FC HTTP trigger calls `handler(environ, start_response)`). Every request is authenticated (`Authenticator`);
decisions are POSTs carrying a per-user token (HMAC), so a page on another site cannot make a reviewer's browser
decide. Jinja2 autoescaping renders every name as text, whatever brackets or markup it holds.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from flask import Flask, Response, abort, redirect, render_template, request, url_for

from shared.ports import JobRecord, JobStore, MatchStore, VerdictStore
from shared.review.views import moments, passages, timeline
from shared.services.actions import ActionRunner
from shared.verdicts.evidence import MODALITY_LABELS, Evidence
from shared.verdicts.policy import Policy
from shared.verdicts.service import REVIEW_DECISIONS, VerdictService

TEMPLATES = Path(__file__).with_name("templates")
PAGE_SIZE = 200


class ReviewStores(JobStore, MatchStore, VerdictStore, Protocol):
    """What the review page reads (jobs, matches, verdicts) and writes (verdicts)."""


class Authenticator(Protocol):
    def user(self, environ: Mapping[str, Any]) -> str | None:
        """The reviewer making this request, or None (answered 401)."""
        ...


def password_hash(password: str) -> str:
    """How `FPSCREEN_REVIEWERS` stores a password: `sha256:<hex>` (the page is behind HTTPS on FC)."""
    return "sha256:" + hashlib.sha256(password.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class BasicAuth:
    """HTTP Basic against `{user: password_hash(password)}`."""

    users: Mapping[str, str]

    def user(self, environ: Mapping[str, Any]) -> str | None:
        header = str(environ.get("HTTP_AUTHORIZATION", ""))
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            name, _, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        expected = self.users.get(name)
        if expected is None or not hmac.compare_digest(expected, password_hash(password)):
            return None
        return name


@dataclass(frozen=True)
class TrustedLocalUser:
    """`fpscreen review` on 127.0.0.1: the person who started it is the reviewer."""

    name: str

    def user(self, environ: Mapping[str, Any]) -> str | None:
        return self.name


class ThumbnailSource(Protocol):
    def thumbnail(self, bucket: str, key: str, seconds: float) -> bytes | None:
        """A JPEG of the object's picture at `seconds`, or None when it cannot be had."""
        ...


def _day(value: str) -> float | None:
    try:
        return dt.datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc).timestamp()
    except ValueError:
        return None


def _when(epoch: float) -> str:
    if not epoch:
        return ""
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def create_app(
    store: ReviewStores,
    *,
    policies: list[Policy],
    auth: Authenticator,
    actions: ActionRunner | None = None,
    thumbnails: ThumbnailSource | None = None,
    secret: bytes | None = None,
    clock: Callable[[], float] | None = None,
) -> Flask:
    app = Flask(__name__, template_folder=str(TEMPLATES))
    key = secret or os.urandom(32)
    service = (
        VerdictService(store, policies, actions)
        if clock is None
        else VerdictService(store, policies, actions, clock=clock)
    )
    app.jinja_env.filters["when"] = _when

    def token_for(user: str) -> str:
        return hmac.new(key, user.encode("utf-8"), hashlib.sha256).hexdigest()

    def reviewer() -> str:
        user = auth.user(request.environ)
        if user is None:
            abort(Response("authentication required\n", 401, {"WWW-Authenticate": 'Basic realm="fpscreen review"'}))
        return user

    def check_token(user: str) -> None:
        if not hmac.compare_digest(request.form.get("token", ""), token_for(user)):
            abort(403)

    def library_jobs(primary_key: str) -> list[JobRecord]:
        """The library item's own jobs (an indexed look-up by PrimaryKey, not a scan of every job)."""
        jobs = store.jobs_for_item(primary_key) if primary_key else []
        return [j for j in jobs if j.save_type in ("forcesave", "save", "onlysave")]

    def library_names(primary_keys: list[str]) -> dict[str, str]:
        """PrimaryKey → the library object it was stored from."""
        return {key: jobs[0].object_key for key in primary_keys if (jobs := library_jobs(key))}

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    @app.get("/")
    def index() -> str:
        user = reviewer()
        verdict, library = request.args.get("verdict", ""), request.args.get("library", "")
        since, until = _day(request.args.get("from", "")), _day(request.args.get("to", ""))
        every = store.recent_verdicts(10_000)
        current: dict[str, str] = {}
        for record in every:  # newest first: the first job seen for a key is its current version
            current.setdefault(record.object_key, record.job_id)
        rows = [
            r
            for r in every
            if (not verdict or r.final_verdict == verdict)
            and (not library or r.fp_db_id == library)
            and (since is None or r.submitted_at >= since)
            and (until is None or r.submitted_at < until + 86400)
        ]
        return render_template(
            "list.html",
            user=user,
            rows=rows[:PAGE_SIZE],
            more=max(0, len(rows) - PAGE_SIZE),
            total=len(every),
            current=current,
            libraries=sorted({r.fp_db_id for r in every if r.fp_db_id}),
            filters={
                "verdict": verdict,
                "library": library,
                "from": request.args.get("from", ""),
                "to": request.args.get("to", ""),
            },
            evidence=lambda r: Evidence.from_dict(r.evidence),
            token=token_for(user),
        )

    @app.get("/jobs/<job_id>")
    def detail(job_id: str) -> str:
        user = reviewer()
        record = store.get_verdict(job_id)
        job = store.get_job(job_id)
        if record is None or job is None:
            abort(404)
        evidence = Evidence.from_dict(record.evidence)
        rows = store.matches_for_job(job_id)
        names = library_names([item.primary_key for item in evidence.items])
        items = []
        for item in evidence.items:
            item_rows = [r for r in rows if r.matched_key == item.primary_key]
            picked, more = moments(item_rows)
            items.append(
                {
                    "evidence": item,
                    "library_object": names.get(item.primary_key, ""),
                    "lanes": timeline(item_rows, evidence.upload_length, item.unit),
                    "moments": picked,
                    "more_moments": more,
                    "passages": passages(item_rows, item.unit),
                }
            )
        versions = store.verdicts_for_object(record.object_key)
        return render_template(
            "detail.html",
            user=user,
            record=record,
            job=job,
            evidence=evidence,
            items=items,
            versions=versions,
            thumbnails=thumbnails is not None,
            decisions=REVIEW_DECISIONS,
            labels=MODALITY_LABELS,
            token=token_for(user),
        )

    @app.post("/jobs/<job_id>/decision")
    def decide(job_id: str) -> Any:
        user = reviewer()
        check_token(user)
        decision = request.form.get("decision", "")
        if decision not in REVIEW_DECISIONS:
            abort(400)
        try:
            service.review(job_id, decision, reviewer=user, note=request.form.get("note", "")[:1000])
        except LookupError:
            abort(404)
        return redirect(url_for("detail", job_id=job_id), code=303)

    @app.post("/reevaluate")
    def reevaluate() -> Any:
        user = reviewer()
        check_token(user)
        service.reevaluate()
        return redirect(url_for("index"), code=303)

    @app.get("/thumbs/<job_id>/<side>/<int:millis>.jpg")
    def thumb(job_id: str, side: str, millis: int) -> Response:
        reviewer()
        if thumbnails is None or side not in ("upload", "library"):
            abort(404)
        job = store.get_job(job_id)
        if job is None:
            abort(404)
        bucket, object_key = job.bucket, job.object_key
        if side == "library":
            primary_key = request.args.get("item", "")
            stored = library_jobs(primary_key)
            if not stored:
                abort(404)
            bucket, object_key = stored[0].bucket, stored[0].object_key
        image = thumbnails.thumbnail(bucket, object_key, millis / 1000.0)
        if image is None:
            abort(404)
        return Response(image, mimetype="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    return app
