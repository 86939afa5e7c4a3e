# Two commands from a fresh clone, with no network but the package registry:
#   make demo   - the main job, offline, with the real splade-tiny model
#   make test   - lint, types, the docs site and every test
#   make test-fast - the inner loop: every test not marked slow, core and the adapters (no lint)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LINTED := $(wildcard src tests examples benchmarks scripts integrations docs)
export SPLADE_ONNX_CACHE ?= $(CURDIR)/.cache/splade-onnx
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# The core's suite on two pytest-xdist workers, a test module per worker (--dist loadfile): a module's
# fixtures (the Ray cluster, encoded corpora, loaded checkpoints) are made once, on one worker.
XDIST  ?= -n 2 --dist loadfile --durations=15

.PHONY: demo test test-fast lint pytest bench bench-prepare bench-search bench-pruning bench-static-query bench-int8 bench-fusion bench-ray bench-pruned-head bench-cold-start \
	bench-bin-memory golden golden-families golden-fastembed golden-pinecone torch-bin-fixtures clean docs fastembed-contract

$(STAMP): pyproject.toml integrations/langchain/pyproject.toml integrations/llamaindex/pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev]' -e 'integrations/langchain[test,milvus]' langchain-text-splitters \
		-e 'integrations/llamaindex[test]'
	touch $@

# llama-index-vector-stores-milvus pins pymilvus<3 and langchain-milvus needs >=3: the LlamaIndex
# Milvus tests get their own venv.
LI_MILVUS := .venv-li-milvus
$(LI_MILVUS)/.installed: pyproject.toml integrations/llamaindex/pyproject.toml Makefile
	test -x $(LI_MILVUS)/bin/python || $(PYTHON) -m venv $(LI_MILVUS)
	$(LI_MILVUS)/bin/python -m pip install -q -e . -e 'integrations/llamaindex[test-milvus]'
	touch $@

# Haystack's components are tested with only the core and splade-haystack installed, as a Haystack user
# installs them (nothing else of .venv; haystack-ai's and qdrant-haystack's requirements apart from it).
HAYSTACK := .venv-haystack
$(HAYSTACK)/.installed: pyproject.toml integrations/haystack/pyproject.toml Makefile
	test -x $(HAYSTACK)/bin/python || $(PYTHON) -m venv $(HAYSTACK)
	$(HAYSTACK)/bin/python -m pip install -q -e . -e 'integrations/haystack[test]' 'mypy>=1.10'
	touch $@

demo: $(STAMP)
	$(BIN)/python examples/demo.py

lint: $(STAMP) $(HAYSTACK)/.installed
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy
	$(BIN)/mypy --strict integrations/langchain/langchain_splade
	$(BIN)/mypy --strict integrations/llamaindex/llama_index/sparse_embeddings/splade
	MYPYPATH=integrations/haystack/src $(HAYSTACK)/bin/mypy --strict --cache-dir .mypy_cache/haystack \
		-p haystack_integrations.components.embedders.splade

pytest: $(STAMP) $(LI_MILVUS)/.installed $(HAYSTACK)/.installed
	$(BIN)/python -m pytest $(XDIST)
	$(BIN)/python -m pytest integrations/langchain/tests
	$(BIN)/python -m pytest integrations/llamaindex/tests --ignore=integrations/llamaindex/tests/milvus
	$(LI_MILVUS)/bin/python -m pytest integrations/llamaindex/tests/milvus
	$(HAYSTACK)/bin/python -m pytest integrations/haystack/tests

# The documentation site, warnings as errors (mkdocs.yml; docs/hooks.py adds benchmarks/results).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# Without the tests marked slow (whole-corpus parity, the Ray cluster, long command-line runs).
test-fast: $(STAMP) $(HAYSTACK)/.installed
	$(BIN)/python -m pytest $(XDIST) -m "not slow"
	$(BIN)/python -m pytest -m "not slow" integrations/langchain/tests
	$(BIN)/python -m pytest -m "not slow" integrations/llamaindex/tests --ignore=integrations/llamaindex/tests/milvus
	$(HAYSTACK)/bin/python -m pytest -m "not slow" integrations/haystack/tests

test: lint docs pytest

# The reference oracle (torch + transformers) lives in its own venv; only needed to regenerate tests/golden/.
.venv-ref/.installed:
	$(PYTHON) -m venv .venv-ref
	.venv-ref/bin/python -m pip install -q torch==2.13.0 transformers safetensors numpy onnx
	touch $@

TINY_DIR = $$($(BIN)/python -c "from splade_onnx._hub import resolve; print(resolve('rasyosef/splade-tiny').path)")

golden: .venv-ref/.installed $(STAMP)
	.venv-ref/bin/python scripts/make_golden.py --model-dir "$(TINY_DIR)"
	.venv-ref/bin/python scripts/make_golden_modernbert.py --model-dir "$(TINY_DIR)"

# pinecone-text's own SpladeEncoder (its base install: no torch of its own) beside the oracle's torch and transformers.
.venv-ref/.pinecone-text: .venv-ref/.installed
	.venv-ref/bin/python -m pip install -q pinecone-text==0.11.0
	touch $@

golden-pinecone: .venv-ref/.pinecone-text $(STAMP)
	HF_HUB_OFFLINE=1 .venv-ref/bin/python scripts/make_golden_pinecone.py --model-dir "$(TINY_DIR)"

# The model-family fixtures and their references need sentence-transformers 6.x beside torch.
.venv-st/.installed:
	$(PYTHON) -m venv .venv-st
	.venv-st/bin/python -m pip install -q torch==2.13.0 'sentence-transformers>=6,<7' safetensors numpy
	touch $@

# sentence-transformers 5.x beside optimum's ONNX Runtime and OpenVINO backends for make bench: optimum-onnx and
# optimum-intel pin transformers<4.58, so they get a venv of their own (6.x runs in .venv-st). Where the OpenVINO
# side cannot be installed, the ONNX side still is, and encode.py's OpenVINO rows say why they failed.
ST5_PINS := torch==2.13.0 'sentence-transformers>=5,<6' 'transformers<4.58' 'optimum[onnxruntime]' safetensors numpy
.venv-st5/.installed: Makefile
	test -x .venv-st5/bin/python || $(PYTHON) -m venv .venv-st5
	.venv-st5/bin/python -m pip install -q $(ST5_PINS) 'optimum-intel[openvino]' \
		|| .venv-st5/bin/python -m pip install -q $(ST5_PINS)
	touch $@

golden-families: .venv-st/.installed $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv-st/bin/python scripts/make_golden_families.py --tiny-dir "$(TINY_DIR)"

# The pytorch_model.bin fixtures need transformers 4.x (5.x writes safetensors only) beside torch.
.venv-tf4/.installed:
	$(PYTHON) -m venv .venv-tf4
	.venv-tf4/bin/python -m pip install -q torch==2.13.0 'transformers>=4.50,<5' safetensors numpy
	touch $@

torch-bin-fixtures: .venv-tf4/.installed $(STAMP)
	.venv-tf4/bin/python scripts/make_torch_bin_fixtures.py --tiny-dir "$(TINY_DIR)"

# Benchmarks (not tests): FastEmbed 0.9.1 pins huggingface_hub<2, so it gets its own venv beside splade-onnx.
.venv-bench/.installed: pyproject.toml
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install -q -e . fastembed==0.9.1 ir-measures pytrec-eval-terrier bm25s matplotlib
	touch $@

# FastEmbed's own vectors on look-alikes of the repositories it downloads, and its model list (FastEmbed 0.9.1).
golden-fastembed: .venv-bench/.installed
	HF_HUB_OFFLINE=1 PYTHONPATH=src:tests .venv-bench/bin/python scripts/make_golden_fastembed.py

# FastEmbed's own sparse tests and type stub against the facade, with only the import changed. Not part of
# make test: it needs a qdrant/fastembed checkout (or its git directory): make fastembed-contract FASTEMBED=<path>
.venv-fastembed/.installed: pyproject.toml
	test -x .venv-fastembed/bin/python || $(PYTHON) -m venv .venv-fastembed
	.venv-fastembed/bin/python -m pip install -q -e . fastembed==0.9.1 pytest mypy
	touch $@

fastembed-contract: .venv-fastembed/.installed
	@test -n "$(FASTEMBED)" || { echo "usage: make fastembed-contract FASTEMBED=<a qdrant/fastembed checkout>"; exit 2; }
	.venv-fastembed/bin/python scripts/run_fastembed_tests.py --fastembed "$(FASTEMBED)" --python .venv-fastembed/bin/python

bench-prepare: .venv-ref/.installed $(STAMP)
	.venv-ref/bin/python benchmarks/prepare.py --tiny-dir "$(TINY_DIR)"

bench: bench-prepare .venv-bench/.installed .venv-st/.installed .venv-st5/.installed
	.venv-bench/bin/python benchmarks/encode.py

bench-search: $(STAMP)
	$(BIN)/python benchmarks/search.py

# Encoding speed of two revisions back to back: make bench-ab BASE=<git revision> [HEAD=<revision>]
.PHONY: bench-ab
bench-ab: bench-prepare $(STAMP)
	$(BIN)/python benchmarks/ab_encode.py --base "$(BASE)" --head "$(or $(HEAD),HEAD)"

# SparseIndex at 100k, 300k and 1M documents made of real vectors, beside Seismic and BMP (hours; see --help).
.PHONY: bench-index-scale
bench-index-scale: $(STAMP)
	$(BIN)/python benchmarks/index_scale.py

bench-pruning: $(STAMP)
	$(BIN)/python benchmarks/pruning.py

bench-int8: $(STAMP)
	$(BIN)/python benchmarks/int8_variants.py

bench-cold-start: $(STAMP)
	$(BIN)/python benchmarks/cold_start.py

bench-ray: $(STAMP)
	$(BIN)/python benchmarks/ray_scaling.py

bench-pruned-head: $(STAMP)
	$(BIN)/python benchmarks/pruned_head.py
	$(BIN)/python benchmarks/pruned_kernels.py

bench-fusion: bench-prepare
	$(BIN)/python benchmarks/fusion.py

bench-static-query: .venv-st/.installed $(STAMP)
	$(BIN)/python benchmarks/static_query.py --st-python .venv-st/bin/python

bench-bin-memory: $(STAMP)
	$(BIN)/python benchmarks/bin_memory.py

clean:
	rm -rf $(VENV) $(LI_MILVUS) $(HAYSTACK) .venv-ref .venv-st .venv-st5 .venv-tf4 .venv-bench .cache .pytest_cache .mypy_cache .ruff_cache benchmarks/.work
