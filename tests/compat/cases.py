# ruff: noqa: E501  (scripted calls read best on one line)
"""The scripted calls the differential harness runs through cottoncandy 0.4.0 and through ours.

Each case is the text a 0.4.0 user would write (``code`` to set up, ``expr`` the call compared).
Names bound in the scripts: ``cc``, ``cci`` (an interface on the case's bucket), ``np``, ``tmp`` (a
scratch folder of this library's run), ``BUCKET``, ``ENDPOINT``, ``os``, ``io``. A case with
``differs`` is a deliberate difference; its text names the row of README's table of deliberate
differences ("README: ...") that justifies it.
"""

from __future__ import annotations

from typing import Any

from .harness import Case

A = "a = np.arange(12, dtype='<f4').reshape(3, 4)\n"
TREE = (A + "for k in ['t/x', 't/sub/y', 't/sub/z', 't/sub2/w', 't/top', 't/topper/q', 'u/v']:\n"
        "    cci.upload_raw_array(k, a, compression=False)\n")
FILE = "p = os.path.join(tmp, 'f.bin')\nopen(p, 'wb').write(b'hello world')\n"
SPARSE = "import scipy.sparse as sp\nm = sp.random(20, 30, density=0.2, format='{fmt}', random_state=1)\n"
STRUCT = "s = np.array([(1, 2.5), (3, 4.5)], dtype=[('i', '<i4'), ('f', '<f8')])\n"


def _cases() -> list[Case]:
    c: list[Case] = []
    add = c.append

    # --- raw arrays: compression, dtypes, orders, keywords ------------------------------------------
    dtypes = ["<f4", "<f8", "<i2", ">i4", "<u8", "|b1", "<c8", "|u1", "<M8[s]", "|S3", "<U2", "<f2"]
    for dt in dtypes:
        if dt.startswith("<M8"):  # 0.4.0 cannot upload datetimes at all (memoryview refuses dtype 'M')
            continue
        add(Case(f"raw_roundtrip_{dt}", A + f"b = np.arange(6).astype('{dt}').reshape(2, 3)\n"
                 f"cci.upload_raw_array('r', b, compression=False)\n", "cci.download_raw_array('r')"))
        add(Case(f"raw_gzip_{dt}", A + f"b = np.arange(6).astype('{dt}').reshape(2, 3)\n"
                 f"cci.upload_raw_array('r', b)\n", "cci.download_raw_array('r')"))
    for comp in ["False", "'gzip'"]:
        add(Case(f"raw_datetime_{comp.strip(chr(39))}", "b = np.arange(6).astype('<M8[s]')\n"
                 f"cci.upload_raw_array('r', b, compression={comp})\n", "cci.download_raw_array('r')",
                 differs="README: 0.4.0 bugs not copied (datetime arrays could not be uploaded)",
                 expect_old="raises:ValueError", expect_ours="returns", compare_store=False))
    for comp in ["False", "True", "'gzip'", "'LZ4'", "'Zlib'", "'Zstd'", "'BZ2'", "None"]:
        add(Case(f"raw_compression_{comp.strip(chr(39))}", A + f"cci.upload_raw_array('r', a, compression={comp})\n",
                 "cci.download_raw_array('r')"))
    add(Case("raw_F_order", A + "cci.upload_raw_array('r', np.asfortranarray(a))\n", "cci.download_raw_array('r')"))
    add(Case("raw_noncontiguous", A + "cci.upload_raw_array('r', a[:, ::2])\n", "cci.download_raw_array('r')"))
    add(Case("raw_scalar_0d", "cci.upload_raw_array('r', np.array(3.5))\n", "cci.download_raw_array('r')"))
    add(Case("raw_empty_gzip", "cci.upload_raw_array('r', np.zeros((0, 3)))\n", "cci.download_raw_array('r')"))
    for comp in ["LZ4", "Zlib", "Zstd", "BZ2"]:
        add(Case(f"raw_empty_{comp}", f"cci.upload_raw_array('r', np.zeros((0, 3)), compression='{comp}')\n",
                 "cci.download_raw_array('r')", differs="0.4.0 bug not copied: empty arrays with a numcodecs "
                 "codec failed (README: compatibility, 0.4.0 bugs we fix)", expect_old="raises:ZeroDivisionError", expect_ours="returns",
                 compare_store=False))
    add(Case("raw_structured", STRUCT + "cci.upload_raw_array('r', s, compression=False)\n",
             "cci.download_raw_array('r')", differs="0.4.0 reads structured dtypes as void; ours keeps the "
             "fields (README: structured dtypes)", expect_ours="returns", compare_store=False))
    add(Case("raw_structured_body_same_bytes", STRUCT + "cci.upload_raw_array('r', s, compression=False)\n",
             "cci.download_object('r')"))
    add(Case("raw_extra_metadata", A + "cci.upload_raw_array('r', a, subject='S1', run='2')\n",
             "cci.download_stream('r').metadata"))
    add(Case("raw_metadata_not_str", A + "cci.upload_raw_array('r', a, subject=3, run=5.5, ok=True)\n",
             "cci.download_stream('r').metadata", differs="README: metadata values that are not strings (0.4.0 on S3: AttributeError inside botocore)",
             expect_old="raises:AttributeError", expect_ours="returns", compare_store=False))
    for key in ["dtype", "shape", "order"]:
        add(Case(f"raw_metadata_conflict_{key}", A, f"cci.upload_raw_array('r', a, {key}='x')"))
    add(Case("raw_metadata_conflict_compression", A, "cci.upload_raw_array('r', a, compression='gzip')"))
    add(Case("raw_gzip_kwarg", A + "cci.upload_raw_array('r', a, gzip=True)\n", "cci.download_raw_array('r')"))
    add(Case("raw_upload_threads_acl", A + "cci.upload_raw_array('r', a, acl='private', threads=2)\n",
             "cci.download_raw_array('r')"))
    add(Case("raw_download_buffersize_threads", A + "cci.upload_raw_array('r', a)\n",
             "cci.download_raw_array('r', buffersize=2**10, threads=2)"))
    add(Case("raw_download_extra_kwargs", A + "cci.upload_raw_array('r', a)\n",
             "cci.download_raw_array('r', 2**16, 3, foo=1)"))
    add(Case("raw_positional", A + "cci.upload_raw_array('r', a, 'Zlib', 'private', 2)\n",
             "cci.download_raw_array('r')"))
    add(Case("raw_missing", "", "cci.download_raw_array('nope')"))
    add(Case("raw_missing_leading_slash", A + "cci.upload_raw_array('r', a)\n", "cci.download_raw_array('/r')"))
    add(Case("raw_not_an_array_object", "cci.upload_json('j', {'x': 1})\n", "cci.download_raw_array('j')"))
    add(Case("raw_argument_not_array", "", "cci.upload_raw_array('r', [1, 2, 3])"))
    add(Case("raw_unknown_compression", A, "cci.upload_raw_array('r', a, compression='nope')"))
    add(Case("raw_legacy_gzip_metadata", A + "import gzip\n"
             "cci.upload_object('r', io.BytesIO(gzip.compress(a.tobytes())), dtype='<f4', shape='3,4', "
             "gzip='True')\n", "cci.download_raw_array('r')"))
    add(Case("raw_legacy_F_numcodecs", A + "import numcodecs\nf = np.asfortranarray(a)\n"
             "cci.upload_object('r', io.BytesIO(numcodecs.Zstd().encode(f.tobytes(order='F'))), dtype='<f4', "
             "shape='3,4', order='F', compression='Zstd')\n", "cci.download_raw_array('r')",
             differs="0.4.0 bug not copied: an order=F numcodecs body was read in C order (README: compatibility)",
             expect_old="returns", expect_ours="returns"))

    # --- npy, json, pickle, objects -------------------------------------------------------------------
    add(Case("npy_roundtrip", A + "cci.upload_npy_array('n', a)\n", "cci.download_npy_array('n')"))
    add(Case("npy_threads_acl_meta", A + "cci.upload_npy_array('n', a, acl='private', threads=2, who='me')\n",
             "[cci.download_npy_array('n', threads=2), cci.download_stream('n').metadata]"))
    add(Case("npy_meta_not_str", A + "cci.upload_npy_array('n', a, subject=3)\n", "cci.download_stream('n').metadata",
             differs="README: metadata values that are not strings (0.4.0 on S3: AttributeError inside botocore)",
             expect_old="raises:AttributeError", expect_ours="returns", compare_store=False))
    add(Case("npy_missing", "", "cci.download_npy_array('nope')"))
    add(Case("json_roundtrip", "cci.upload_json('j', {'a': [1, 2], 'b': 'x'})\n", "cci.download_json('j')"))
    add(Case("json_threads_meta", "cci.upload_json('j', [1, 2], threads=1, tag='t', n='4')\n",
             "[cci.download_json('j', threads=2), cci.download_stream('j').metadata]"))
    add(Case("json_missing", "", "cci.download_json('nope')"))
    add(Case("pickle_roundtrip", "cci.upload_pickle('p', {'a': (1, 2), 'b': {3}})\n", "cci.download_pickle('p')"))
    add(Case("pickle_threads_meta", "cci.upload_pickle('p', [1], acl='private', threads=2, n='4')\n",
             "[cci.download_pickle('p', threads=2), cci.download_stream('p').metadata]"))
    add(Case("pickle_missing", "", "cci.download_pickle('nope')"))
    add(Case("object_bytesio", "cci.upload_object('o', io.BytesIO(b'abc'), acl='private', threads=2, m='1')\n",
             "[cci.download_object('o'), cci.download_object('o', threads=2), cci.download_stream('o').metadata]"))
    add(Case("object_meta_not_str", "cci.upload_object('o', io.BytesIO(b'abc'), n=5)\n",
             "cci.download_stream('o').metadata", differs="README: metadata values that are not strings (0.4.0 on S3: AttributeError inside botocore)",
             expect_old="raises:AttributeError", expect_ours="returns", compare_store=False))
    add(Case("download_stream_threads", "cci.upload_object('o', io.BytesIO(b'abc'), k='v')\n",
             "cci.download_stream('o', threads=2)"))
    add(Case("download_stream_missing", "", "cci.download_stream('nope')"))
    add(Case("download_object_missing", "", "cci.download_object('nope')"))

    # --- exists / objects / buckets ---------------------------------------------------------------------
    add(Case("exists_object", A + "cci.upload_raw_array('e', a)\n",
             "[cci.exists_object('e'), cci.exists_object('/e'), cci.exists_object('nope'), cci.exists_object('e', BUCKET)]"))
    add(Case("exists_object_folder", TREE, "[cci.exists_object('t'), cci.exists_object('t/sub')]"))
    add(Case("exists_object_raise_err", "", "cci.exists_object('nope', raise_err=True)"))
    add(Case("exists_object_raise_err_present", A + "cci.upload_raw_array('e', a)\n",
             "cci.exists_object('e', raise_err=True)"))
    add(Case("exists_bucket", "", "[cci.exists_bucket(BUCKET), cci.exists_bucket('no-such-bucket-here')]"))
    add(Case("bucket_name", "", "cci.bucket_name == BUCKET"))
    add(Case("pathjoin", "", "[cci.pathjoin('a', 'b'), cci.pathjoin('a/', 'b'), cci.pathjoin('a', '/b'), "
             "cci.pathjoin('', 'b'), cci.pathjoin('a', 'b', '')]"))
    add(Case("pathjoin_not_str", "", "cci.pathjoin('a', 1)", differs="README: pathjoin('a', 1) (a part that is not a str)",
             expect_old="raises:AttributeError", expect_ours="raises:TypeError", compare_store=False))
    add(Case("get_size", TREE, "cci.get_size()"))
    add(Case("get_bucket_size", TREE, "cci.get_bucket_size()"))
    add(Case("get_bucket_size_kwargs", TREE, "cci.get_bucket_size(limit=10, page_size=10)"))
    add(Case("get_objects_keys", TREE, "sorted(o.key for o in cci.get_objects())"))
    add(Case("get_objects_prefix", TREE, "sorted(o.key for o in cci.get_objects(filter=dict(Prefix='t/sub')))"))
    add(Case("get_objects_limit", TREE, "len(list(cci.get_objects(limit=3, page_size=2)))"))
    add(Case("get_bucket_objects", TREE, "sorted(o.key for o in cci.get_bucket_objects())"))
    add(Case("get_objects_sizes", TREE, "sorted((o.key, o.size) for o in cci.get_objects())"))
    add(Case("show_objects", TREE, "cci.show_objects()"))
    add(Case("show_objects_kwargs", TREE, "cci.show_objects(limit=2, page_size=2)"))
    add(Case("show_buckets", "", "cci.show_buckets()"))
    add(Case("get_object_key", A + "cci.upload_raw_array('g', a)\n", "cci.get_object('g').key"))
    add(Case("get_object_metadata", A + "cci.upload_raw_array('g', a, compression=False)\n",
             "cci.get_object('/g', BUCKET).metadata"))
    add(Case("get_bucket_name", "", "cci.get_bucket().name == BUCKET"))
    add(Case("get_object_owner_missing", "", "cci.get_object_owner('nope')"))
    add(Case("get_object_owner", "cci.upload_json('j', {})\n", "cci.get_object_owner('j')", additive=True))
    add(Case("set_bucket", "", "[cci.set_bucket(BUCKET), cci.bucket_name == BUCKET]"))
    add(Case("create_bucket_acl", "x = BUCKET + '-acl'\ncci.create_bucket(x, acl='private')\n",
             "[cci.exists_bucket(x), cci.rm_bucket(x)]"))
    add(Case("create_and_rm_bucket", "x = BUCKET + '-extra'\ncci.create_bucket(x)\n",
             "[cci.exists_bucket(x), cci.rm_bucket(x), cci.exists_bucket(x)]"))
    add(Case("set_bucket_missing", "", "cci.set_bucket('no-such-bucket-here')"))
    add(Case("repr", "", "repr(cci).split(' ')[0]"))

    # --- files and directories ---------------------------------------------------------------------------
    add(Case("upload_from_file", FILE + "cci.upload_from_file(p, 'f')\n", "cci.download_object('f')"))
    add(Case("upload_from_file_threads_extra", FILE +
             "cci.upload_from_file(p, 'f', ExtraArgs=dict(ACL='private'), threads=2)\n", "cci.download_object('f')"))
    add(Case("upload_from_file_missing", "", "cci.upload_from_file(os.path.join(tmp, 'nope'), 'f')"))
    add(Case("download_to_file", "cci.upload_object('o', io.BytesIO(b'abc'))\np = os.path.join(tmp, 'o.bin')\n"
             "cci.download_to_file('o', p)\n", "open(p, 'rb').read()"))
    add(Case("download_to_file_threads", "cci.upload_object('o', io.BytesIO(b'abc'))\n"
             "p = os.path.join(tmp, 'o.bin')\ncci.download_to_file('/o', p, threads=2)\n", "open(p, 'rb').read()"))
    add(Case("download_to_file_missing", "", "cci.download_to_file('nope', os.path.join(tmp, 'x'))"))
    upload_dir = ("d = os.path.join(tmp, 'up')\nos.makedirs(os.path.join(d, 'sub'))\n"
                  "open(os.path.join(d, 'a.txt'), 'w').write('a')\nopen(os.path.join(d, 'sub', 'b.txt'), 'w').write('b')\n")
    add(Case("upload_from_directory", upload_dir + "cci.upload_from_directory(d, 'dir')\n",
             "sorted(o.key for o in cci.get_objects())"))
    add(Case("upload_from_directory_default_name", upload_dir + "os.chdir(tmp)\ncci.upload_from_directory('up')\n",
             "sorted(o.key for o in cci.get_objects())"))
    add(Case("upload_from_directory_recursive", upload_dir +
             "cci.upload_from_directory(d, 'dir', recursive=True, ExtraArgs=dict(ACL='private'), threads=2)\n",
             "sorted(o.key for o in cci.get_objects())"))
    add(Case("download_directory", TREE + "out = os.path.join(tmp, 'down')\ncci.download_directory('t/sub', out)\n",
             "sorted(os.listdir(out))"))
    add(Case("download_directory_empty", "", "cci.download_directory('nothing/here', os.path.join(tmp, 'down'))",
             warns="UserWarning", additive=True))
    add(Case("download_directory_trivial_pattern", TREE + "out = os.path.join(tmp, 'down')\n"
             "cci.download_directory('t/sub/*', out)\n", "sorted(os.listdir(out))"))
    add(Case("download_directory_pattern", TREE, "cci.download_directory('t/s*', os.path.join(tmp, 'down'))"))

    # --- listing ------------------------------------------------------------------------------------------
    for path in ["'t'", "'t/'", "'/t'", "'t/sub'", "'u'", "'nothing'", "", "'/'", "'t/*'", "'t/sub/*'"]:
        name = path.strip("'").replace("/", "_S_").replace("*", "STAR") or "default"
        add(Case(f"lsdir_{name}", TREE, f"sorted(cci.lsdir({path}))"))
    add(Case("lsdir_limit", TREE, "sorted(cci.lsdir('t', limit=100))"))
    add(Case("lsdir_magic", TREE, "cci.lsdir('t/s*b')"))
    for pattern in ["'t'", "'t/sub'", "'t/*'", "'t/sub/*'", "'t/s*'", "'*'", "'u/v'", "'nothing'", "'t/sub/y'"]:
        name = pattern.strip("'").replace("/", "_S_").replace("*", "STAR")
        add(Case(f"ls_{name}", TREE, f"sorted(cci.ls({pattern}))"))
    add(Case("ls_kwargs", TREE, "sorted(cci.ls('t/*', page_size=10, limit=100))"))
    add(Case("ls_verbose", TREE, "sorted(cci.ls('t/*', verbose=True))", differs="README: ls(verbose=True) "
             "returns the names it prints (0.4.0 returned [])", expect_old="value", expect_ours="value"))
    for pattern in ["'t/sub/*'", "'t/*/y'", "'t/sub/?'", "'t/sub/[yz]'", "'u/v'", "'nothing*'", "'t/sub/y'"]:
        name = pattern.strip("'").replace("/", "_S_").replace("*", "STAR").replace("?", "Q").replace("[", "").replace("]", "")
        add(Case(f"glob_{name}", TREE, f"cci.glob({pattern})"))
    add(Case("glob_kwargs", TREE, "cci.glob('t/sub/*', page_size=10, limit=100, verbose=True, do_unquote=True)"))
    add(Case("glob_star_crosses_levels", TREE, "cci.glob('t/*')", differs="README: glob('a/*') stays in its level",
             expect_ours="value"))
    add(Case("glob_prefix_is_not_a_match", TREE, "cci.glob('t/top')", differs="README: glob('path/top') exact match",
             expect_ours="value"))
    add(Case("search", TREE, "cci.search('t/sub/*')"))
    add(Case("glob_s3", TREE, "cci.glob_s3('t/sub/*', page_size=10, verbose=False)"))
    add(Case("search_kwargs", TREE, "cci.search('t/sub/*', page_size=10, limit=5)"))
    add(Case("glob_star_top_level", TREE, "cci.glob('*')", differs="README: glob('*') is the top level only",
             expect_ours="value"))
    add(Case("glob_quoted_name", "cci.upload_json('q/a%20b', {})\n", "cci.glob('q/*', do_unquote=False)"))

    # --- cp / mv / rm --------------------------------------------------------------------------------------
    add(Case("cp", A + "cci.upload_raw_array('s', a, k='v')\ncci.cp('s', 'd')\n", "cci.download_raw_array('d')"))
    add(Case("cp_overwrite", A + "cci.upload_raw_array('s', a)\ncci.upload_raw_array('d', a[:1])\n"
             "cci.cp('s', 'd', overwrite=True)\n", "cci.download_raw_array('d')"))
    add(Case("cp_buckets_kwargs", A + "cci.upload_raw_array('s', a)\n"
             "cci.cp('s', 'd', source_bucket=BUCKET, dest_bucket=BUCKET, overwrite=False)\n",
             "cci.download_raw_array('d')"))
    add(Case("cp_exists", A + "cci.upload_raw_array('s', a)\ncci.upload_raw_array('d', a)\n", "cci.cp('s', 'd')"))
    add(Case("cp_missing", "", "cci.cp('nope', 'd')"))
    add(Case("cp_folder", TREE, "cci.cp('t/sub', 'd')"))
    add(Case("cp_leading_slash", A + "cci.upload_raw_array('s', a)\n", "[cci.cp('/s', 'd/e'), cci.download_raw_array('d/e')]",
             differs="README: cp/mv of '/name' (0.4.0 sent CopySource 'bucket//name': server error)",
             expect_old="raises:ClientError", expect_ours="value", compare_store=False))
    add(Case("mv", A + "cci.upload_raw_array('s', a)\ncci.mv('s', 'd')\n",
             "[cci.exists_object('s'), cci.download_raw_array('d')]"))
    add(Case("mv_overwrite", A + "cci.upload_raw_array('s', a)\ncci.upload_raw_array('d', a[:1])\n"
             "cci.mv('s', 'd', overwrite=True)\n", "[cci.exists_object('s'), cci.download_raw_array('d')]"))
    add(Case("mv_exists", A + "cci.upload_raw_array('s', a)\ncci.upload_raw_array('d', a)\n", "cci.mv('s', 'd')"))
    add(Case("mv_missing", "", "cci.mv('nope', 'd')"))
    add(Case("rm_object", TREE + "cci.rm('t/x')\n", "sorted(o.key for o in cci.get_objects())"))
    add(Case("rm_recursive", TREE + "cci.rm('t/sub/', recursive=True)\n", "sorted(o.key for o in cci.get_objects())"))
    add(Case("rm_recursive_spares_siblings", TREE + "cci.rm('t/sub', recursive=True)\n",
             "sorted(o.key for o in cci.get_objects())",
             differs="README: rm -r spares siblings (0.4.0 also removed t/sub2)", expect_ours="value",
             compare_store=False))
    add(Case("rm_nothing", TREE, "cci.rm('nothing/here')", warns="UserWarning", additive=True))
    add(Case("rm_folder_not_recursive", TREE + "cci.rm('t/sub')\n", "sorted(o.key for o in cci.get_objects())",
             warns="NeedsOptionWarning"))  # a UserWarning carrying its remedy (recursive=True)
    add(Case("rm_pattern_recursive", TREE + "cci.rm('t/sub/*', recursive=True)\n",
             "sorted(o.key for o in cci.get_objects())"))
    add(Case("rm_pattern_not_recursive", TREE + "cci.rm('t/sub/*')\n", "sorted(o.key for o in cci.get_objects())"))
    add(Case("rm_leading_slash", TREE + "cci.rm('/t/x')\n", "sorted(o.key for o in cci.get_objects())"))
    add(Case("rm_delete_kwarg", TREE + "cci.rm('t/x', recursive=False, delete=True)\n",
             "sorted(o.key for o in cci.get_objects())"))

    # --- dask ------------------------------------------------------------------------------------------------
    # 12 MB (three parts of 5 MiB) of distinct values gzip level 9 gets through quickly (tests/datautil.py)
    big = "b = (np.arange(3 * 1024 * 1024, dtype='<u4') * np.uint32(2654435761)).reshape(1024, 3072)\n"
    add(Case("dask_roundtrip", big + "cci.upload_dask_array('k', b, axis=0, buffersize=5 * 2**20)\n",
             "cci.download_dask_array('k')"))
    add(Case("dask_kwargs", A + "cci.upload_dask_array('k', a, axis=-1, buffersize=2**23, threads=2, tag='x')\n",
             "[cci.download_dask_array('k', dask_name='zz', threads=2), cci.download_json('k/metadata.json')]"))
    add(Case("dask_axis_none", A + "cci.upload_dask_array('k', a, axis=None)\n", "cci.download_dask_array('k')"))
    add(Case("dask_small_buffersize", A, "cci.upload_dask_array('k', a, buffersize=2**20)"))
    add(Case("dask_missing", "", "cci.download_dask_array('nope')"))
    add(Case("dask_pickled_graph", A + "import cloudpickle\ncci.upload_dask_array('k', a)\n"
             "d = cloudpickle.loads(cloudpickle.dumps(cci.download_dask_array('k')))\n", "d.compute()",
             differs="README: dask graphs pickle (0.4.0's held the boto3 client: TypeError)", expect_old="raises:TypeError", expect_ours="returns"))

    # --- sparse ------------------------------------------------------------------------------------------------
    for fmt in ["csr", "csc", "coo", "bsr", "dia", "lil", "dok"]:
        add(Case(f"sparse_{fmt}", SPARSE.format(fmt=fmt) + "cci.upload_sparse_array('m', m)\n",
                 "cci.download_sparse_array('m')"))
    add(Case("sparse_threads", SPARSE.format(fmt="csr") + "cci.upload_sparse_array('m', m, threads=2)\n",
             "cci.download_sparse_array('m', threads=2)"))
    add(Case("sparse_missing", "", "cci.download_sparse_array('nope')"))

    # --- dict2cloud / cloud2dict / dataset ---------------------------------------------------------------------
    tree = A + "dd = {'x': a, 'sub': {'y': a * 2, 'z': [1, 2, 3]}}\n"
    add(Case("dict2cloud", tree + "cci.dict2cloud('g', dd)\n", "cci.cloud2dict('g')"))
    add(Case("dict2cloud_kwargs", A + "dd = {'x': a, 'sub': {'y': a * 2}}\n"
             "cci.dict2cloud('g', dd, acl='private', verbose=False, threads=2, who='me')\n",
             "cci.cloud2dict('g', verbose=False, threads=2)"))
    add(Case("dict2cloud_metadata_on_lists", tree + "cci.dict2cloud('g', dd, who='me')\n",
             "cci.download_stream('g/sub/z').metadata", differs="README: dict2cloud metadata reaches values made "
             "with np.asarray (0.4.0 dropped it for them)", expect_old="value", expect_ours="value", compare_store=False))
    add(Case("cloud2dict_keys", tree + "cci.dict2cloud('g', dd)\n", "cci.cloud2dict('g', keys=['x'])"))
    add(Case("cloud2dict_keys_str", tree + "cci.dict2cloud('g', dd)\n", "cci.cloud2dict('g', keys='x')"))
    add(Case("cloud2dict_empty", "", "cci.cloud2dict('nothing')"))
    add(Case("cloud2dict_missing_key", tree + "cci.dict2cloud('g', dd)\n", "cci.cloud2dict('g', keys=['nope'])",
             differs="README: cloud2dict(keys=[missing]) raises KeyError naming it (0.4.0: {'nope': None})",
             expect_old="value", expect_ours="raises:KeyError", compare_store=False))
    add(Case("dict2cloud_object_dtype", "", "cci.dict2cloud('g', {'o': np.array([{}, 1], dtype=object)})",
             differs="README: dict2cloud of an object-dtype value is refused before anything is written",
             expect_old="returns", expect_ours="raises:TypeError", compare_store=False))
    add(Case("cloud2dict_non_array", tree + "cci.dict2cloud('g', dd)\ncci.upload_json('g/j', {'q': 1})\n",
             "cci.cloud2dict('g')"))
    add(Case("cloud2dataset_keys", tree + "cci.dict2cloud('p/g.grp', dd)\n", "cci.cloud2dataset('p').g_DOT_grp.keys()"))
    add(Case("cloud2dataset_load", tree + "cci.dict2cloud('p/g.grp', dd)\n", "cci.cloud2dataset('p').g_DOT_grp.load('x')"))
    add(Case("cloud2dataset_folder_keys", tree + "cci.dict2cloud('g', dd)\n", "cci.cloud2dataset('g').keys()",
             differs="README: browser keys()/load() on any folder (0.4.0: only under .grp, else AssertionError)",
             expect_old="raises:AssertionError", expect_ours="value"))

    # --- browser ------------------------------------------------------------------------------------------------
    # 0.4.0's browser works from a folder (cloud2dataset); keys()/load() exist on .grp groups only
    names = (A + "for k in ['proj/ses-1.grp/run-01', 'proj/ses-1.grp/x', 'proj/b', 'proj/01-first.grp/y']:\n"
             "    cci.upload_raw_array(k, a)\nds = cci.cloud2dataset('proj')\n")
    add(Case("browser_dir", names, "sorted(dir(ds))"))
    add(Case("browser_group_dir", names, "sorted(dir(ds.ses_1_DOT_grp))"))
    add(Case("browser_group_keys", names, "ds.ses_1_DOT_grp.keys()"))
    add(Case("browser_attr_dash", names, "ds.ses_1_DOT_grp.run_01.load()"))
    add(Case("browser_group_load_key", names, "ds.ses_1_DOT_grp.load('run_01')"))
    add(Case("browser_num", names, "ds.NUM_01_first_DOT_grp.y.load()"))
    add(Case("browser_stored_name", names, "getattr(ds, 'ses-1.grp').load('x')"))
    add(Case("browser_fullpath", names, "ds.ses_1_DOT_grp.run_01._fullpath"))
    add(Case("browser_unknown", names, "ds.nothing_here"))
    add(Case("browser_group_load_unknown_key", names, "ds.ses_1_DOT_grp.load('nope')"))
    add(Case("browser_len", names, "[len(ds), len(ds.ses_1_DOT_grp)]"))
    add(Case("browser_group_load_stored_key", names, "ds.ses_1_DOT_grp.load('run-01')",
             differs="README: browser load() takes the stored name too (0.4.0 only the attribute name)",
             expect_old="raises:ValueError", expect_ours="returns"))
    add(Case("browser_root", names, "sorted(dir(cci.get_browser().proj))"))
    add(Case("browser_folder_load", names, "ds.b.load()", differs="README: load() on any dataset, not only "
             "inside a .grp group (0.4.0: AssertionError)", expect_old="raises:AssertionError", expect_ours="returns"))

    # --- get_interface keywords ------------------------------------------------------------------------------------
    add(Case("get_interface_config", "from botocore.client import Config\n",
             "cc.get_interface(BUCKET, ACCESS_KEY='testing', SECRET_KEY='t', endpoint_url=ENDPOINT, verbose=False, "
             "config=Config(connect_timeout=5, read_timeout=60)).exists_object('nope')",
             differs="README: get_interface(config=) without a signature_version (0.4.0 set it to '' and failed)",
             expect_old="raises:UnknownSignatureVersionError", expect_ours="value"))
    add(Case("get_interface_config_signature", "from botocore.client import Config\n",
             "cc.get_interface(BUCKET, ACCESS_KEY='testing', SECRET_KEY='t', endpoint_url=ENDPOINT, verbose=False, "
             "force_bucket_creation=False, backend='s3', config=Config(signature_version='s3v4')).bucket_name == BUCKET"))
    add(Case("version", "", "cc.__version__ != '0.4.0' or cc.__version__", differs="the version tells the two "
             "libraries apart (README: install)", expect_ours="value"))

    # --- local backend: the same calls on a directory ------------------------------------------------------------
    # --- 0.4.0's module-level names: cc.options, cc.utils, config constants -------------------------
    modules = {
        "module_constants": "[cc.ENDPOINT_URL, cc.DEFAULT_SIGNATURE_VERSION, cc.default_bucket, cc.force_bucket_creation]",
        "module_options_config": "[cc.options.config.get('basic', 'threads'), cc.options.config.get('compression', 'large_array'), sorted(cc.options.config.sections())]",
        "module_utils_sizes": "[cc.utils.MB, cc.utils.MIN_MPU_SIZE, cc.utils.MAX_PUT_SIZE, cc.utils.MAX_MPU_SIZE, cc.utils.MAX_MPU_PARTS, cc.utils.MPU_THRESHOLD, cc.utils.MPU_CHUNKSIZE, cc.utils.DASK_CHUNKSIZE, cc.utils.THREADS, cc.utils.SEPARATOR, cc.utils.DEFAULT_ACL]",
        "module_string2bool": "[cc.string2bool(v) for v in ['True', 'yes', 'tru', 'None', 'no', 'TRUE', '']]",
        "module_bytes2human": "[cc.utils.bytes2human(n) for n in [0, 1, 1000, 1024, 123456789, 2**40 + 5]]",
        "module_path_helpers": "[cc.utils.pathjoin('a', 'b', '/c', 'd'), cc.utils.split_uri('s3://b/p/q'), cc.utils.mk_aws_path('x'), cc.utils.mk_aws_path('/'), cc.utils.remove_root('/a/b'), cc.utils.sanitize_metadata({'Ab': 1})]",
        "module_magic": "[[f(s) for f in (cc.utils.has_magic, cc.utils.has_trivial_magic, cc.utils.has_real_magic, cc.utils.remove_trivial_magic)] for s in ['a/*', 'a/*/b', 'a?', 'plain', 'a/b/']]",
        "module_ndarray_chunks": "[(c, x.shape) for c, x in cc.utils.generate_ndarray_chunks(np.zeros((300, 40, 7)), axis=0, buffersize=5 * 2**20)] + [(c, x.shape) for c, x in cc.utils.generate_ndarray_chunks(np.zeros((3000, 500)), axis=1, buffersize=5 * 2**20)]",
        "module_read_buffered": "[cc.utils.read_buffered(io.BytesIO(np.arange(12, dtype='<i4').tobytes()), z := np.empty((3, 4), '<i4', order=o), buffersize=7) or z for o in 'CF']",
        "module_gzip_stream": "[(g := cc.utils.GzipInputStream(io.BytesIO(__import__('gzip').compress(b'abcdef' * 1000)), block_size=64)).read(5), g.tell(), g.seek(100), g.read(4), g.tell(), len(g.read())]",
        "module_get_fileobject_size": "[cc.utils.get_fileobject_size(f := io.BytesIO(b'12345')), f.tell()]",
    }
    for name, expr in modules.items():
        add(Case(name, "", expr, compare_store=True))
    add(Case("module_get_keys_environ", "os.environ['AWS_ACCESS_KEY'] = 'ak'\nos.environ['AWS_SECRET_KEY'] = 'sk'\n",
             "[cc.get_keys(), cc.utils.get_key_from_environ(), os.environ.pop('AWS_ACCESS_KEY'), os.environ.pop('AWS_SECRET_KEY')]"))

    local = [
        Case("local_raw", A + "cci.upload_raw_array('r', a)\n", "cci.download_raw_array('r')"),
        Case("local_raw_Zstd_meta", A + "cci.upload_raw_array('d/r', a, compression='Zstd', subject='3')\n",
             "[cci.download_raw_array('d/r'), cci.download_stream('d/r').metadata]"),
        Case("local_json", "cci.upload_json('j', {'a': 1})\n", "cci.download_json('j')"),
        Case("local_pickle", "cci.upload_pickle('p', (1, 2))\n", "cci.download_pickle('p')"),
        Case("local_npy", A + "cci.upload_npy_array('n', a)\n", "cci.download_npy_array('n')"),
        Case("local_exists", A + "cci.upload_raw_array('x/r', a)\n", "[cci.exists_object('x/r'), cci.exists_object('x')]"),
        Case("local_missing_raw", "", "cci.download_raw_array('nope')"),
        Case("local_lsdir", TREE, "sorted(cci.lsdir('t'))"),
        Case("local_glob", TREE, "sorted(cci.glob('t/sub/*'))"),
        Case("local_rm", TREE + "cci.rm('t/x')\n", "sorted(cci.glob('t/**'))"),
        Case("local_meta_not_str", A + "cci.upload_raw_array('r', a, subject=3)\n", "cci.download_stream('r').metadata",
             differs="README: metadata values are strings (0.4.0's local backend kept JSON numbers)",
             expect_ours="value", compare_store=False),
        Case("local_cp_overwrite", A + "cci.upload_raw_array('s', a)\ncci.cp('s', 'd', overwrite=True)\n",
             "cci.download_raw_array('d')"),
        Case("local_mv_overwrite", A + "cci.upload_raw_array('s', a)\ncci.mv('s', 'e/d', overwrite=True)\n",
             "[cci.exists_object('s'), cci.download_raw_array('e/d')]"),
        Case("local_cp_no_overwrite", A + "cci.upload_raw_array('s', a)\n", "cci.cp('s', 'd')",
             differs="README: local cp/mv without overwrite=True (0.4.0 raised NotImplementedError for every one)",
             expect_old="raises:NotImplementedError", expect_ours="returns", compare_store=False),
        Case("local_dict2cloud", A + "cci.dict2cloud('g', {'x': a, 's': {'y': a}})\n", "cci.cloud2dict('g')"),
        Case("local_sparse", SPARSE.format(fmt="csr") + "cci.upload_sparse_array('m', m)\n",
             "cci.download_sparse_array('m')"),
        Case("local_dask", A + "cci.upload_dask_array('k', a)\n", "cci.download_dask_array('k')"),
        Case("local_upload_from_file", FILE + "cci.upload_from_file(p, 'f')\n", "cci.download_object('f')"),
        Case("local_download_to_file", "cci.upload_object('o', io.BytesIO(b'abc'))\np = os.path.join(tmp, 'o.bin')\n"
             "cci.download_to_file('o', p)\n", "open(p, 'rb').read()"),
    ]
    for case in local:
        add(Case(**{**case.__dict__, "backend": "local"}))
    c += _wrong_kind_cases()
    return c


# --- every download_* meets every kind of stored object; every upload_* meets the wrong inputs --------------
# (issue 23.) Where 0.4.0 raised, ours raises an instance of each class 0.4.0's exception is (harness.compare);
# where it returned, ours returns. The deliberate differences of this matrix are MATRIX_DIFFERS below, each
# naming its row of README's table.

#: what is stored at ``x`` before a download: each kind of object an upload_* makes, plain objects
#: (binary, text, empty, a .npz archive, a file uploaded without metadata), folders (sparse, dask, dict2cloud, manifests that are not
#: manifests) and nothing
STORED = {
    "raw": A + "cci.upload_raw_array('x', a)\n",
    "raw_plain": A + "cci.upload_raw_array('x', a, compression=False)\n",
    "raw_zstd": A + "cci.upload_raw_array('x', a, compression='Zstd')\n",
    "npy": A + "cci.upload_npy_array('x', a)\n",
    "npz": A + "z = io.BytesIO()\nnp.savez(z, a=a)\nz.seek(0)\ncci.upload_object('x', z)\n",
    "json": "cci.upload_json('x', {'a': [1, 2], 'b': 'c'})\n",
    "json_list": "cci.upload_json('x', [1, 2, 3])\n",
    "pickle": "cci.upload_pickle('x', {'a': (1, 2)})\n",
    "pickle_array": A + "cci.upload_pickle('x', a)\n",
    "bytes": "cci.upload_object('x', io.BytesIO(bytes(range(256))))\n",
    "text": "cci.upload_object('x', io.BytesIO(b'hello world\\n'))\n",
    "empty": "cci.upload_object('x', io.BytesIO(b''))\n",
    "from_file": "open(os.path.join(tmp, 'f.txt'), 'wb').write(b'hello')\ncci.upload_from_file(os.path.join(tmp, 'f.txt'), 'x')\n",
    "sparse": SPARSE.format(fmt="csr") + "cci.upload_sparse_array('x', m)\n",
    "dask": A + "cci.upload_dask_array('x', a)\n",
    "tree": A + "cci.dict2cloud('x', {'a': a, 's': {'b': a}})\n",
    "manifest_list": "cci.upload_json('x/metadata.json', [1, 2])\n",
    "manifest_binary": "cci.upload_object('x/metadata.json', io.BytesIO(bytes(range(256))))\n",
    "missing": "",
}

#: each download_* of 0.4.0's interface, and cloud2dict, as a call on ``x``; files on disk are listed
FILES = ("out = os.path.join(tmp, 'out')\n"
         "def files(d):\n"
         "    return sorted(os.path.relpath(os.path.join(r, f), d) for r, _, fs in os.walk(d) for f in fs) "
         "if os.path.isdir(d) else None\n")
DOWNLOADS = {
    "download_raw_array": "cci.download_raw_array('x')",
    "download_npy_array": "cci.download_npy_array('x')",
    "download_json": "cci.download_json('x')",
    "download_pickle": "cci.download_pickle('x')",
    "download_object": "cci.download_object('x')",
    "download_stream": "cci.download_stream('x')",
    "download_to_file": "(cci.download_to_file('x', out), open(out, 'rb').read(), files(tmp))[1:]",
    "download_sparse_array": "cci.download_sparse_array('x')",
    "download_dask_array": "cci.download_dask_array('x')",
    "download_directory": "(cci.download_directory('x', out), files(out))[1]",
    "cloud2dict": "cci.cloud2dict('x')",
}

#: wrong (and right) inputs of each upload_*: the harness compares what each library does with each
VALUES = {
    "str": "'text'",
    "bytes": "b'abc'",
    "dict": "{'a': 1}",
    "list": "[1, 2, 3]",
    "dense": "a",
    "sparse": "m",
    "none": "None",
    "int": "123456789",  # not 5: an int is a file descriptor to os functions, and fd 5 may be open
}
UPLOADS = {
    "upload_raw_array": "cci.upload_raw_array('x', {v})",
    "upload_npy_array": "cci.upload_npy_array('x', {v})",
    "upload_json": "cci.upload_json('x', {v})",
    "upload_pickle": "cci.upload_pickle('x', {v})",
    "upload_object": "cci.upload_object('x', {v})",
    "upload_sparse_array": "cci.upload_sparse_array('x', {v})",
    "upload_dask_array": "cci.upload_dask_array('x', {v})",
    "upload_from_file": "cci.upload_from_file({v}, 'x')",
    "upload_from_directory": "cci.upload_from_directory({v}, 'x')",
    "dict2cloud": "cci.dict2cloud('x', {v})",
}

GZIP_BODY = "README: default (gzip) body (the object's bytes are our parallel gzip member, not 0.4.0's)"
LOCAL_SIDECARS = ("README: local backend download_to_file/download_directory (0.4.0 also copied each object's "
                  ".meta.json sidecar beside the downloaded file)")
NPY_OBJECTS = ("README: object-dtype arrays (upload_npy_array of a value np.asanyarray makes an object array: "
               "0.4.0 stored a pickle inside the .npy, which its own download_npy_array refuses)")
BYTES_BODY = "README: upload_object of a bytes-like body (0.4.0 needed a file object)"
LOCAL_FAILED_UPLOAD = ("README: a failed upload_object on the local backend leaves nothing (0.4.0 left an "
                       "empty object)")

#: the deliberate differences of the matrix: (backend or "" for both, call, stored kind or input) -> Case keywords
MATRIX_DIFFERS: dict[tuple[str, str, str], dict[str, Any]] = {
    **{("", call, "raw"): dict(differs=GZIP_BODY, expect_old="value", expect_ours="value")
       for call in ("download_object", "download_stream", "download_to_file")},
    **{("local", "download_to_file", kind): dict(differs=LOCAL_SIDECARS, expect_old="value", expect_ours="value")
       for kind in STORED if kind not in ("sparse", "dask", "tree", "manifest_list", "manifest_binary", "missing")},
    ("local", "download_to_file", "from_file"): dict(differs=LOCAL_SIDECARS + "; without one it failed",
                                                     expect_old="raises:FileNotFoundError", expect_ours="value"),
    **{("local", "download_directory", kind): dict(differs=LOCAL_SIDECARS, expect_old="value", expect_ours="value")
       for kind in ("sparse", "dask", "tree", "manifest_list", "manifest_binary")},
    **{("", "upload_npy_array", kind): dict(differs=NPY_OBJECTS, expect_old="returns", expect_ours="raises:ValueError",
                                            compare_store=False)
       for kind in ("dict", "sparse", "none")},
    **{("s3", "upload_object", kind): dict(differs=BYTES_BODY, expect_old="raises:ValueError", expect_ours="returns",
                                           compare_store=False) for kind in ("bytes", "dense")},
    **{("local", "upload_object", kind): dict(differs=BYTES_BODY, expect_old="raises:AttributeError",
                                              expect_ours="returns", compare_store=False) for kind in ("bytes", "dense")},
    **{("local", "upload_object", kind): dict(differs=LOCAL_FAILED_UPLOAD, expect_old="raises:AttributeError",
                                              expect_ours="raises:AttributeError", compare_store=False)
       for kind in VALUES if kind not in ("bytes", "dense")},
}


def _matrix_case(name: str, code: str, expr: str, backend: str, call: str, kind: str) -> Case:
    declared = MATRIX_DIFFERS.get((backend, call, kind)) or MATRIX_DIFFERS.get(("", call, kind), {})
    prefix = "" if backend == "s3" else "local_"
    return Case(prefix + name, code, expr, backend=backend, **declared)


def _wrong_kind_cases() -> list[Case]:
    c: list[Case] = []
    for backend in ("s3", "local"):
        for call, expr in DOWNLOADS.items():
            for kind, setup in STORED.items():
                c.append(_matrix_case(f"kinds_{call}_of_{kind}", setup + FILES, expr, backend, call, kind))
        for call, template in UPLOADS.items():
            for kind, value in VALUES.items():
                c.append(_matrix_case(f"inputs_{call}_{kind}", A + SPARSE.format(fmt="csr"), template.format(v=value),
                                      backend, call, kind))
    return c


CASES = _cases()
