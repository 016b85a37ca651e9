"""Differential tests: every case runs through cottoncandy 0.4.0 and through ours; outcomes must agree.

See ``harness.py`` for what "agree" means and ``cases.py`` for the scripted calls (deliberate
differences are declared there and listed in README's table).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from .cases import CASES
from .conftest import NEW_BUCKET, OLD_BUCKET
from .harness import Case, compare, reset_bucket, snapshot_dir, snapshot_s3


def run_case(case: Case, runners: Any, s3_client: Any, s3_server: Any, tmp_path: Path) -> list[str]:
    """Both libraries run the case at once, each on its own bucket (or directory); then compare."""

    def one(runner: Any, bucket: str, label: str) -> tuple[dict[str, Any], dict[str, Any]]:
        tmp = tmp_path / label
        tmp.mkdir()
        if case.backend == "local":
            where = str(tmp_path / f"{label}-bucket")
        else:
            reset_bucket(s3_client, bucket)
            where = bucket
        answer = runner.run(backend=case.backend, bucket=where, endpoint=s3_server.endpoint_url,
                            tmp=str(tmp), code=case.code, expr=case.expr)
        return answer, snapshot_dir(Path(where)) if case.backend == "local" else snapshot_s3(s3_client, bucket)

    old_runner, new_runner = runners
    with ThreadPoolExecutor(max_workers=2) as pool:
        old = pool.submit(one, old_runner, OLD_BUCKET, "old")
        new = pool.submit(one, new_runner, NEW_BUCKET, "new")
        (old_answer, old_store), (new_answer, new_store) = old.result(), new.result()
    return compare(case, old_answer, new_answer, old_store, new_store)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_same_as_040(case: Case, runners: Any, s3_client: Any, s3_server: Any, tmp_path: Path) -> None:
    problems = run_case(case, runners, s3_client, s3_server, tmp_path)
    assert not problems, f"{case.name}: " + "\n".join(problems)
