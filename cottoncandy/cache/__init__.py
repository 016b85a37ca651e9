"""Byte caches between the mount and the store: aligned blocks with prefetch, decoded arrays."""
