"""Array services: arrays on a store, read and written through storage and formats.

The layer between the core (storage, formats, namespace, cache) and the faces (the 0.4.0 API in
``interface``, the ccfs daemon and CLI): raw arrays (``raw``), 0.4.0's dask layout and lazy ranged
reads (``chunked``), scipy.sparse matrices (``sparse``), dict trees (``groups``), ``.npy`` files
(``npy_files``) and descriptions of what a key holds (``inspect``). It does I/O only through an
``ObjectStore``, so every path here runs the same on S3, a local directory or memory.
"""
