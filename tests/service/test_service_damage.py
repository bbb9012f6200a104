"""Issue 10 item 12 through the API: a corrupt fingerprint blob no longer fails every job on its library."""

from __future__ import annotations

import sqlite3

from engine.library import DB_FILE
from engine.service.app import EngineService
from tests.service.conftest import TEXT_ORIGINAL, TEXT_OTHER, CoreMps, Oss, create_library, query_jobs, submit


def test_jobs_on_a_library_with_a_corrupt_blob_still_work(service: EngineService, core: CoreMps, oss: Oss) -> None:
    lib = create_library(core, 11)
    stored = {
        key: submit(core, oss.put("text-bucket", f"{key}.txt", text), {"PrimaryKey": key, "SaveType": "onlysave",
                                                                          "FpDBId": lib})
        for key, text in (("broken", TEXT_OTHER), ("intact", TEXT_ORIGINAL))
    }  # fmt: skip
    for job in stored.values():
        assert service.wait_for_job(job).state == "Success"
    broken = service.library.get_item(lib, "broken")
    assert broken is not None
    with sqlite3.connect(service.data_dir / DB_FILE) as db:
        db.execute("UPDATE fingerprints SET data = x'00112233' WHERE item_id = ?", (broken.item_id,))

    query = oss.put("text-bucket", "query.txt", TEXT_ORIGINAL[200:1400])
    job = submit(core, query, {"PrimaryKey": "q", "SaveType": "nosave", "FpDBId": lib})
    assert service.wait_for_job(job).state == "Success"  # was: Fail, InternalError "bad magic"
    [shown] = query_jobs(core, job)["FpShotJobList"]["FpShotJob"]
    shots = shown["FpShotResult"]["TextFpShots"]["TextFpShot"]
    assert [shot["PrimaryKey"] for shot in shots] == ["intact"]
    [damaged] = service.library.damaged_items(lib)
    assert (damaged.primary_key, damaged.modality) == ("broken", "text")
