"""What to mount: ``BUCKET[/PREFIX]``, ``s3://BUCKET/PREFIX`` (a scheme of the store registry) or a local folder."""

from __future__ import annotations

from dataclasses import dataclass

from cottoncandy.files.urls import PATH_STARTS
from cottoncandy.names import clean_object_name, refuse_dot_components
from cottoncandy.storage import registry


@dataclass(frozen=True)
class Target:
    scheme: str  # a scheme of ``cottoncandy.storage.registry.KINDS``: "s3", "file" (a local directory), ...
    bucket: str  # bucket name, or the directory for the local backend
    prefix: str = ""

    def __str__(self) -> str:
        if registry.kind_of(self.scheme).paths:
            return self.bucket
        root = f"{self.scheme}://{self.bucket}"
        return f"{root}/{self.prefix}" if self.prefix else root

    def store_url(self) -> str:
        """The URL ``registry.open_store`` opens for this target's bucket."""
        return f"{self.scheme}://{self.bucket}"


def parse_target(text: str) -> Target:
    """``s3://b/p`` and ``b/p`` are S3 (the registry's first scheme); paths starting with ``/``,
    ``./``, ``../``, ``~`` or ``file://`` are local directories."""
    if not text:
        raise ValueError("nothing to mount: give BUCKET[/PREFIX], s3://BUCKET/PREFIX or a local directory")
    if "://" in text or text.startswith(PATH_STARTS):
        kind, rest = registry.split_url(text)
    else:
        kind, rest = registry.kind_of(registry.default_scheme()), text
    if kind.paths:
        return Target(kind.scheme, rest)
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError(f"no bucket name in {text!r}")
    prefix = clean_object_name(prefix).strip("/")
    refuse_dot_components(prefix, f"the prefix of {text!r}")
    return Target(kind.scheme, bucket, prefix)
