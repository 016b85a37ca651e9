"""Errors that say what to do (issue 23, item 4): a forgotten endpoint, a bucket name no S3 store takes.

Each runs the real command (or the library) and checks the one line a user reads: it names the object
or the option, and says what to do.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.cliutil import CCFS, run
from tests.conftest import BUCKET
from tests.mountutil import needs_fuse

#: AWS made unreachable whatever the machine's network: every request goes to a proxy on a closed
#: port (botocore honours HTTPS_PROXY), and is tried once
NO_AWS = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "",
          "AWS_MAX_ATTEMPTS": "1"}


def without_endpoint(*args: str) -> subprocess.CompletedProcess[str]:
    """``ccfs ARGS`` as a user who gave no endpoint runs it (so requests go to AWS, unreachable here)."""
    env = {**os.environ, **NO_AWS}
    env.pop("AWS_ENDPOINT_URL", None)
    result = subprocess.run([*CCFS, *args], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result


@pytest.mark.parametrize("args", [("ls", "s3://my-bucket/"), ("info", "s3://my-bucket/x"),
                                  ("get", "s3://my-bucket/x", "/tmp/never-written.npy"),
                                  ("refs", "s3://my-bucket/proj")])
def test_no_endpoint_and_aws_unreachable_names_the_option(args: tuple[str, ...]) -> None:
    err = without_endpoint(*args).stderr
    assert "cannot reach AWS S3" in err and "s3://my-bucket" in err, err
    assert "--endpoint-url URL" in err and "AWS_ENDPOINT_URL" in err, err


def test_an_endpoint_that_was_given_gets_no_such_hint() -> None:
    err = without_endpoint("ls", "s3://my-bucket/", "--endpoint-url", "http://127.0.0.1:9").stderr
    assert "s3://my-bucket" in err and "--endpoint-url" not in err and "AWS S3" not in err, err


@needs_fuse
def test_mount_without_an_endpoint_names_the_option(tmp_path: Path) -> None:
    err = without_endpoint("mount", "my-bucket", str(tmp_path)).stderr
    assert "cannot reach AWS S3" in err and "--endpoint-url URL" in err and "AWS_ENDPOINT_URL" in err, err
    assert not os.path.ismount(tmp_path)


def test_the_library_names_its_keyword(monkeypatch: pytest.MonkeyPatch) -> None:
    import cottoncandy as cc

    for name, value in NO_AWS.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(OSError) as caught:
        cc.get_interface("my-bucket", verbose=False)
    message = str(caught.value)
    assert "cannot reach AWS S3" in message and "pass endpoint_url='URL'" in message, message


# --- bare names ---------------------------------------------------------------------------------------------
def in_folder(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CCFS, *args], capture_output=True, text=True, cwd=folder, timeout=120)


@pytest.mark.parametrize(("args", "said"), [
    (("ls", "my-bucket"), "no local file or folder my-bucket (names without s3:// are local paths); "
                          "did you mean s3://my-bucket/?"),
    (("info", "my-bucket/x"), "no local folder my-bucket (names without s3:// are local paths); "
                              "did you mean s3://my-bucket/x?"),
    (("get", "my-bucket/x", "out.npy"), "did you mean s3://my-bucket/x?"),
    (("rm", "my-bucket/x"), "did you mean s3://my-bucket/x?"),
    (("glob", "my-bucket/*"), "did you mean s3://my-bucket/*?"),
    (("cp", "my-bucket/x", "copy"), "did you mean s3://my-bucket/x?"),
    (("refs", "my-bucket/proj"), "did you mean s3://my-bucket/proj?"),
])
def test_a_bare_name_that_is_no_local_path_asks_about_s3(tmp_path: Path, args: tuple[str, ...], said: str) -> None:
    """A bare name is a bucket to ``ccfs mount`` and a local path to the other commands (unchanged); when
    it names nothing here, the one line says so and offers the ``s3://`` URL it may have meant."""
    result = in_folder(tmp_path, *args)
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result.stderr
    assert said in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "copy").exists() and not (tmp_path / "out.npy").exists()


def test_bare_names_keep_their_meaning(tmp_path: Path) -> None:
    import cottoncandy as cc

    cc.get_interface(str(tmp_path / "data"), backend="local", verbose=False).upload_raw_array("arr", np.arange(3.0))
    assert in_folder(tmp_path, "ls", "data").stdout.split() == [f"{tmp_path}/data/arr"]
    assert "raw array" in in_folder(tmp_path, "info", "data/arr").stdout
    missing = in_folder(tmp_path, "ls", "data/missing").stderr  # the folder exists: no question about S3
    assert "nothing found at data/missing" in missing and "s3://" not in missing, missing
    pattern = in_folder(tmp_path, "ls", "*.npy").stderr  # a pattern in this folder
    assert "nothing found" in pattern and "s3://" not in pattern, pattern


# --- bucket names ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [("ls", "s3://ab/"), ("info", "s3://ab/x"), ("glob", "s3://ab/*"),
                                  ("cp", f"s3://{BUCKET}/x", "s3://a_b!/x")])
def test_a_bucket_name_no_s3_store_takes_is_one_line_before_any_request(s3, args: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    s3.clear_log()
    err = run(s3, *args, ok=False).stderr
    assert "invalid bucket name" in err and "3 to 63" in err, err
    assert [r for r in s3.requests() if r.path.split("/")[1] in ("ab", "a_b!")] == []


@needs_fuse
def test_mount_of_a_bucket_name_no_s3_store_takes(s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    err = run(s3, "mount", "ab", str(tmp_path), ok=False).stderr
    assert "invalid bucket name 'ab'" in err and "3 to 63" in err, err


def test_the_library_checks_bucket_names_before_asking(s3) -> None:  # type: ignore[no-untyped-def]
    import cottoncandy as cc
    from cottoncandy.errors import InvalidBucketName

    s3.clear_log()
    with pytest.raises(InvalidBucketName, match="invalid bucket name 'ab'.*3 to 63") as caught:
        cc.get_interface("ab", endpoint_url=s3.endpoint_url, force_bucket_creation=True, verbose=False)
    assert isinstance(caught.value, ValueError) and caught.value.__cause__ is None
    cci = cc.get_interface(BUCKET, endpoint_url=s3.endpoint_url, verbose=False)
    assert cci.exists_bucket("ab") is False  # as 0.4.0 answered (its server said 404)
    assert not [r for r in s3.requests() if "/ab" in r.path]
    # names older AWS buckets and some S3-compatible stores allow pass the check: the server decides
    assert cci.exists_bucket("Legacy_Name") is False


def test_a_servers_invalid_bucket_name_answer_is_one_line(s3) -> None:  # type: ignore[no-untyped-def]
    """A name the check lets through (64 characters: older AWS buckets were allowed 255) that the server
    refuses: one line naming the bucket and S3's rule, an ``InvalidBucketName`` (a ``ValueError`` and an
    ``OSError``), whose cause keeps the server's answer."""
    import cottoncandy as cc
    from cottoncandy.errors import InvalidBucketName

    name = "a" * 64
    with pytest.raises(InvalidBucketName) as caught:
        cc.get_interface(name, endpoint_url=s3.endpoint_url, force_bucket_creation=True, verbose=False)
    message = caught.value.strerror
    assert message is not None and "\n" not in message and name in message and "3 to 63" in message, message
    assert "InvalidBucketName" in message and isinstance(caught.value, (ValueError, OSError))
    assert caught.value.__cause__ is not None

