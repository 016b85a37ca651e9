"""Arrays <-> bytes: raw-array metadata, codecs, .npy headers, json/pickle. No I/O."""
