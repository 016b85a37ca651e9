"""Flat keys <-> a directory tree: folders, .grp groups, raw arrays shown as .npy files."""
