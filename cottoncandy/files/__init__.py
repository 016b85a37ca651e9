"""File services: objects and folders as a shell user sees them, on any store.

Listing and shell-style matching (``listing``), the one name-or-pattern resolver every destructive
call uses (``resolve``), whole-object moves and copies (``transfers``) and what a command-line
argument points at (``urls``). Above storage and namespace patterns; below the faces.
"""
