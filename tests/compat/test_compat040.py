"""Differential tests: every case runs through cottoncandy 0.4.0 and through ours; outcomes must agree.

See ``harness.py`` for what "agree" means and ``cases.py`` for the scripted calls (deliberate
differences are declared there and listed in README's table).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .cases import CASES
from .conftest import NEW_BUCKET, OLD_BUCKET
from .harness import Case, compare, reset_bucket, snapshot_dir, snapshot_s3


def run_case(case: Case, runners: Any, s3_client: Any, s3_server: Any, tmp_path: Path) -> list[str]:
    old_runner, new_runner = runners
    answers, stores = [], []
    for runner, bucket, label in ((old_runner, OLD_BUCKET, "old"), (new_runner, NEW_BUCKET, "new")):
        tmp = tmp_path / label
        tmp.mkdir()
        if case.backend == "local":
            where = str(tmp_path / f"{label}-bucket")
        else:
            reset_bucket(s3_client, bucket)
            where = bucket
        answers.append(runner.run(backend=case.backend, bucket=where, endpoint=s3_server.endpoint_url,
                                  tmp=str(tmp), code=case.code, expr=case.expr))
        stores.append(snapshot_dir(Path(where)) if case.backend == "local" else snapshot_s3(s3_client, bucket))
    return compare(case, answers[0], answers[1], stores[0], stores[1])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_same_as_040(case: Case, runners: Any, s3_client: Any, s3_server: Any, tmp_path: Path) -> None:
    problems = run_case(case, runners, s3_client, s3_server, tmp_path)
    assert not problems, f"{case.name}: " + "\n".join(problems)
