"""What names an object in every persistent cache: the disk blocks (``disk.py``) and the HEAD shelf
(``metadata.py``) both ask :func:`object_identity` / :func:`store_identity`, and nothing else.

Why one function: a cache folder outlives the process and is shared by every mount and library
process of its user, so a name must say everything that decides which bytes an object holds. The
bucket and key are not enough: the same bucket name on another endpoint (a second S3-compatible
server, a test server, another AWS partition) is another bucket, and on an endpoint that is not AWS
the same bucket name under another account can be another bucket too (moto, Ceph RGW tenants). So
an identity is:

* S3: ``s3 <endpoint> <account> <bucket>``. The endpoint is the configured URL without user part,
  query or fragment (host in lower case), or ``aws:<partition>`` for AWS's own endpoints, whose bucket
  names are unique within a partition (``aws``, ``aws-cn``...), so no account is added there (and
  rotating role credentials keep their cache). Elsewhere the account is a short SHA-256 of the access
  key ID the client signs with (not a secret, and not written in clear), else the profile's name.
* a local directory: ``file <real path>``.
* any other store (memory, a store that cannot be rebuilt elsewhere): a random name per store object,
  so nothing it cached is ever answered for another store or process.

The key is appended after a NUL byte (keys cannot hold one in S3), and the ETag and byte range are
added by each cache (``disk.block_name``). No credential enters an identity.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import weakref
from typing import Any

from .. import fastpaths
from ..printable import normalized_endpoint
from ..storage.base import ObjectStore

_KNOWN: weakref.WeakKeyDictionary[ObjectStore, str] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def store_identity(store: ObjectStore) -> str:
    """The cache identity of ``store``'s bucket (module docstring); computed once per store object."""
    with _LOCK:
        known = _KNOWN.get(store)
    if known is not None:
        return known
    identity = _identity(store)
    with _LOCK:
        _KNOWN[store] = identity
    return identity


def object_identity(store: ObjectStore, key: str) -> str:
    """The cache identity of the object ``key`` of ``store``."""
    return f"{store_identity(store)}\0{key}"


def _identity(store: ObjectStore) -> str:
    try:
        spec = store.spec()
    except NotImplementedError:
        return f"{type(store).__name__.lower()} {secrets.token_hex(16)} {store.describe()}"
    settings = dict(spec.settings)
    if spec.scheme == "file":
        return f"file {os.path.realpath(spec.bucket)}"
    if spec.scheme != "s3":
        return f"{spec.scheme} {secrets.token_hex(16)} {spec.bucket}"
    endpoint = settings.get("endpoint_url")
    client = getattr(store, "client", None)
    if not endpoint:
        partition = getattr(getattr(client, "meta", None), "partition", None)
        return f"s3 aws:{partition if isinstance(partition, str) and partition else 'aws'} {spec.bucket}"
    return f"s3 {normalized_endpoint(str(endpoint))} {_account(store, client, settings)} {spec.bucket}"


def _account(store: ObjectStore, client: Any, settings: dict[str, Any]) -> str:
    """Who the client signs as on a non-AWS endpoint: a digest of its access key ID, else the profile.

    The key the client signs with is a private botocore name (``fastpaths``: with the fast paths off,
    only the key given in the settings or the environment counts)."""
    key = getattr(getattr(store, "settings", None), "access_key", None)
    if not key and client is not None and fastpaths.enabled():
        try:
            credentials = fastpaths.private(client, "_request_signer", "_credentials")
            key = getattr(credentials, "access_key", None) if credentials is not None else None
        except Exception:  # no credentials yet, an unusual client (``fastpaths.Unavailable``): as below
            key = None
    if not key and not settings.get("profile"):
        key = os.environ.get("AWS_ACCESS_KEY_ID")
    if isinstance(key, str) and key:
        return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]
    profile = settings.get("profile") or os.environ.get("AWS_PROFILE") or "default"
    return f"profile:{profile}"
