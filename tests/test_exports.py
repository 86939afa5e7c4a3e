from pathlib import Path

import splade_onnx

EXPECTED = [
    "DEFAULT_MODEL",
    "ArgumentError",
    "ArgumentTypeError",
    "CapacityError",
    "EncodeOptions",
    "FileMissingError",
    "IndexFormatError",
    "InputError",
    "MissingExtraError",
    "ModelError",
    "ModelIdentity",
    "ModelInfo",
    "ModelMismatchError",
    "ModelNotFoundError",
    "SourceError",
    "SpladeError",
    "Seismic",
    "SparseEmbedding",
    "SparseIndex",
    "SparseTextEmbedding",
    "SpladeEncoder",
    "UnknownIdError",
    "evaluate",
    "fuse",
    "list_supported_models",
]


def test_public_names_are_pinned() -> None:
    assert sorted(splade_onnx.__all__) == sorted(EXPECTED)
    for name in EXPECTED:
        assert getattr(splade_onnx, name) is not None
    public = {n for n in vars(splade_onnx) if not n.startswith("_")}
    # Submodules are private but for the CLI, the Ray extra (splade_onnx.ray, imported on demand), pinecone-text's
    # encoder (splade_onnx.pinecone, imported on demand) and what the adapters share with the core
    # (splade_onnx.integration); nothing public leaks beyond __all__ and annotations helpers.
    modules = {"cli", "integration", "pinecone", "ray"}
    assert public - set(EXPECTED) <= {"Any", "TYPE_CHECKING", "annotations", "importlib", *modules}


def test_the_integration_module_is_what_the_adapters_share() -> None:
    import splade_onnx.integration as integration

    assert sorted(integration.__all__) == [
        "EngineName",
        "MILVUS_EMPTY_VECTOR",
        "PayloadFormat",
        "PretrainedEncoder",
        "check_bool",
        "keyword_options",
        "milvus_vector",
        "not_single",
    ]
    assert not set(integration.__all__) & set(splade_onnx.__all__)


def test_the_pinecone_module_surface() -> None:
    import splade_onnx.pinecone as pinecone

    assert sorted(pinecone.__all__) == [
        "DEFAULT_MAX_SEQ_LENGTH",
        "FROM_PINECONE_TEXT",
        "SparseVector",
        "SpladePineconeEncoder",
    ]
    assert not set(pinecone.__all__) & set(splade_onnx.__all__)


def test_ships_py_typed() -> None:
    assert (Path(splade_onnx.__file__).parent / "py.typed").is_file()


def test_import_is_cheap_and_the_rest_comes_on_first_use() -> None:
    """``import splade_onnx`` loads neither the encoder nor the index; asking for them imports them."""
    import subprocess
    import sys

    probe = (
        "import sys, splade_onnx\n"
        "heavy = {'splade_onnx._encoder', 'splade_onnx._index', 'splade_onnx._eval', 'tokenizers', 'onnxruntime'}\n"
        "assert not heavy & set(sys.modules), heavy & set(sys.modules)\n"
        "assert splade_onnx.SpladeEncoder.__name__ == 'SpladeEncoder' and 'splade_onnx._encoder' in sys.modules\n"
        "assert 'SparseIndex' in dir(splade_onnx)\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True)
