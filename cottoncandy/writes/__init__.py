"""Writes through the mount (issue 26): the seam the FUSE face calls (``seam``), the writable side
behind it (``writable``), and the kinds of file being written (``streaming``; the staged kind plugs in
where ``writable`` says). No FUSE and no click here: ``ccfs`` stays a thin face over this package."""
