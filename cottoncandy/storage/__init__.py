"""Bytes in and out of object stores: S3 (boto3), a local directory, memory (tests)."""

from .base import Account, Capabilities, Listing, MaybeStoredError, ObjectInfo, ObjectStore, StoreSpec
from .local import LocalAccount, LocalStore
from .memory import MemoryAccount, MemoryStore
from .registry import open_store
from .s3.store import S3Account, S3Store

__all__ = ["Account", "Capabilities", "Listing", "LocalAccount", "LocalStore", "MaybeStoredError", "MemoryAccount",
           "MemoryStore", "ObjectInfo", "ObjectStore", "S3Account", "S3Store", "StoreSpec", "open_store"]
