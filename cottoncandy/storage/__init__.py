"""Bytes in and out of object stores: S3 (boto3), a local directory, memory (tests)."""

from .base import Listing, MaybeStoredError, ObjectInfo, ObjectStore
from .local import LocalAccount, LocalStore
from .memory import MemoryStore
from .s3 import S3Account, S3Store

__all__ = ["Listing", "LocalAccount", "LocalStore", "MaybeStoredError", "MemoryStore", "ObjectInfo", "ObjectStore",
           "S3Account", "S3Store"]
