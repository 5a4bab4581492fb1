"""The fast embedding path (issue 15, item 2): same vectors, thread settings, overlapped ingest.

The local model's tests run the real all-MiniLM-L6-v2 and compare it with
sentence-transformers' own ``encode`` of the same texts (the reference).
The ingest tests run on real SQLite and memory stores with a tiny
deterministic embedder, so they need no model.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import engram
from engram.embeddings import local_available
from engram.embeddings.local import token_batches
from engram.embeddings.pipeline import Overlap, overlapped

needs_model = pytest.mark.skipif(not local_available(), reason="the local extra (engram[local]) is not installed")

SENTENCES = [
    "Hi!",
    "ok",
    "",
    "Caroline: I went to the LGBTQ support group yesterday and it was so powerful.",
    "Melanie: That's amazing, I'm so proud of you for going.",
    "What did the guest lecturer say about monetary policy in the second half of the talk?",
    "The quick brown fox jumps over the lazy dog.",
    "A cat is sleeping on the sofa.",
    "Interest rates rose by half a point.",
    "Ich habe heute keine Zeit, aber morgen gerne.",
    "東京は日本の首都です。",
    "Emoji test 🎉🎉 with accents: café, naïve, Zürich.",
    "When is Melanie planning on going camping with her kids, and where did they go last summer?",
    "Numbers 3.14159 and 2,718 and dates like 2023-05-08 appear too.",
    "Jon: I lost my job as a banker, so I'm starting my own dance studio. It's scary but exciting!",
    "Gina: I opened an online clothing store after losing my job at Door Dash; sales are picking up.",
    " ".join(["This sentence is long enough to be truncated at the model's limit of 256 tokens."] * 30),
    "Short.",
    "Medium length sentence about a trip to the mountains with friends.",
    "Tell me about the painting she finished last week, the one with the sunset over the lake.",
]


def _locomo_turns(n: int) -> list[str]:
    """Real dialogue turns from the shared LoCoMo file when present (the tests do not need it)."""
    import json

    path = Path(__file__).resolve().parents[3] / "shared" / "data" / "locomo" / "locomo-dev.json"
    if not path.exists():
        return []
    turns: list[str] = []
    for sample in json.loads(path.read_text()):
        for key, session in sample["conversation"].items():
            if key.startswith("session_") and isinstance(session, list):
                turns += [f"{t['speaker']}: {t['text']}" for t in session]
    return turns[:n]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return SENTENCES + _locomo_turns(300)


# -- the local model ------------------------------------------------------------
@needs_model
def test_onnx_vectors_equal_sentence_transformers(texts: list[str]) -> None:
    """The product path (token batches on parallel single-thread calls) against the reference encode."""
    st = pytest.importorskip("sentence_transformers")
    from engram.embeddings.local import LocalEmbedder, package_model_dir

    ours = LocalEmbedder(runtime="onnx", threads=2).embed(texts)
    reference = st.SentenceTransformer(str(package_model_dir()), device="cpu").encode(
        texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
    )
    cosine = np.sum(ours * reference, axis=1)
    assert cosine.min() >= 0.9999, f"min cosine {cosine.min():.6f} (text {texts[int(cosine.argmin())]!r})"


@needs_model
def test_batched_one_by_one_and_any_thread_count_agree(texts: list[str]) -> None:
    from engram.embeddings.local import LocalEmbedder

    batched = LocalEmbedder(runtime="onnx", threads=2, batch_size=16).embed(texts)
    sequential = LocalEmbedder(runtime="onnx", threads=1, batch_size=64).embed(texts)
    one = LocalEmbedder(runtime="onnx", threads=2)
    singly = np.vstack([one.embed([t]) for t in texts[:40]])
    assert batched.shape == (len(texts), 384)
    assert np.allclose(batched, sequential, atol=1e-5)
    assert np.allclose(batched[:40], singly, atol=1e-5)
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)


class _RecordingSession:
    """The real ONNX Runtime session, noting which thread ran each batch and how big it was."""

    def __init__(self, session):
        self.session = session
        self.calls: list[tuple[int, tuple[int, int]]] = []
        self.lock = threading.Lock()

    def run(self, outputs, feed):
        with self.lock:
            self.calls.append((threading.get_ident(), feed["input_ids"].shape))
        return self.session.run(outputs, feed)

    def __getattr__(self, name):
        return getattr(self.session, name)


@needs_model
@pytest.mark.parametrize("threads", [1, 2])
def test_thread_settings_are_respected(threads: int, texts: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from engram.embeddings import local
    from engram.embeddings.local import BATCH_TOKENS, LocalEmbedder

    e = LocalEmbedder(runtime="onnx", threads=threads, batch_size=8)
    model = e._model()
    assert model.session.get_session_options().intra_op_num_threads == 1  # parallel batches, not parallel operators
    recorder = _RecordingSession(model.session)
    monkeypatch.setattr(model, "session", recorder)
    e.embed(texts)
    workers = {ident for ident, _ in recorder.calls}
    assert len(recorder.calls) >= len(texts) / 8
    assert all(rows <= 8 and (rows == 1 or rows * width <= BATCH_TOKENS) for _, (rows, width) in recorder.calls)
    if threads == 1:
        assert workers == {threading.get_ident()}  # every batch on the caller's thread
    else:
        assert threading.get_ident() not in workers and 1 <= len(workers) <= threads
    recorder.calls.clear()
    monkeypatch.setattr(local, "_busy_cores", lambda: 99.0)  # every core busy: a lone query takes no partner
    e.embed(["one query runs here, whatever the thread count"])
    assert recorder.calls == [(threading.get_ident(), (1, recorder.calls[0][1][1]))]


@needs_model
@pytest.mark.parametrize("threads", [1, 2])
def test_a_lone_query_spreads_over_idle_cores_only(threads: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from engram.embeddings import local

    e = local.LocalEmbedder(runtime="onnx", threads=threads)
    model = e._model()
    query = "what did Caroline paint after the camping trip?"
    monkeypatch.setattr(local, "_busy_cores", lambda: 99.0)
    narrow = e.embed([query])
    monkeypatch.setattr(local, "_busy_cores", lambda: 0.0)
    assert model._lone_session(threads) is (model.session if threads == 1 else model._wide[threads])
    wide = model._lone_session(threads)
    assert wide.get_session_options().intra_op_num_threads == threads
    recorder = _RecordingSession(wide)
    monkeypatch.setitem(model._wide, threads, recorder)
    spread = e.embed([query])
    if threads == 1:
        assert recorder.calls == []  # one thread asked for: the one-thread session, idle cores or not
    else:
        assert [(ident, rows) for ident, (rows, _) in recorder.calls] == [(threading.get_ident(), 1)]
    assert float(np.dot(narrow[0], spread[0])) > 0.999999  # the same vector, whichever session made it


@needs_model
def test_embedders_sharing_a_model_keep_their_own_thread_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    from engram.embeddings import local

    two, three = local.LocalEmbedder(runtime="onnx", threads=2), local.LocalEmbedder(runtime="onnx", threads=3)
    model = two._model()
    assert three._model() is model  # one loaded model per directory
    monkeypatch.setattr(local, "_busy_cores", lambda: 0.0)
    sessions = [model._lone_session(e.threads) for e in (two, three)]
    assert [s.get_session_options().intra_op_num_threads for s in sessions] == [2, 3]


# -- the int8 variant ------------------------------------------------------------
INT8 = "all-MiniLM-L6-v2-int8"


@needs_model
def test_int8_model_stays_within_cosine_099_of_fp32_and_is_batch_independent(texts: list[str]) -> None:
    from engram.embeddings.local import LocalEmbedder

    int8 = LocalEmbedder(INT8, threads=2, batch_size=16)
    assert (int8.name, int8.dimensions, int8.quantized) == (INT8, 384, True)
    quantized, exact = int8.embed(texts), LocalEmbedder(threads=2).embed(texts)
    cosine = np.sum(quantized * exact, axis=1)
    assert cosine.min() >= 0.99, f"min cosine {cosine.min():.4f} (text {texts[int(cosine.argmin())]!r})"
    assert cosine.mean() < 0.99999  # other vectors than fp32: why the model has a name of its own
    assert np.allclose(np.linalg.norm(quantized, axis=1), 1.0, atol=1e-5)
    # activations are scaled per call, so each text runs alone: its vector never depends on its batch mates
    singly = np.vstack([int8.embed([t]) for t in texts[:30]])
    assert np.array_equal(singly, quantized[:30])
    assert np.array_equal(LocalEmbedder(INT8, threads=1).embed(texts[:30]), quantized[:30])


@needs_model
def test_int8_model_runs_each_text_in_its_own_call(texts: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from engram.embeddings.local import LocalEmbedder

    e = LocalEmbedder(INT8, threads=2)
    model = e._model()
    assert "int8" in model.onnx_path.name and model.onnx_path.exists()
    recorder = _RecordingSession(model.session)
    monkeypatch.setattr(model, "session", recorder)
    e.embed(texts[:25])
    assert len(recorder.calls) == len(texts[:25]) and all(rows == 1 for _, (rows, _) in recorder.calls)


def test_int8_model_needs_onnx_runtime() -> None:
    from engram.embeddings.local import LocalEmbedder

    with pytest.raises(engram.InvalidInput, match="ONNX Runtime"):
        LocalEmbedder(INT8, runtime="torch")
    assert LocalEmbedder("all-MiniLM-L6-v2").name == "all-MiniLM-L6-v2"  # the fp32 model by its name


@needs_model
def test_a_failed_quantization_is_an_error_never_fp32_vectors_under_the_int8_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engram.embeddings import local, quantize

    fp32 = local.LocalEmbedder()._model().onnx_path
    monkeypatch.setattr(local, "_models", {})
    monkeypatch.setattr(local, "onnx_cache_dir", lambda: tmp_path)
    monkeypatch.setattr(local, "_fp32_graph", lambda model_dir: fp32)

    def broken(source: Path, target: Path, layers: int) -> Path:
        raise OSError("disk full")

    monkeypatch.setattr(quantize, "quantize_onnx", broken)
    with pytest.raises(engram.BackendError, match="int8.*disk full"):
        local.LocalEmbedder(INT8).embed(["a query"])
    assert list(tmp_path.iterdir()) == []


@needs_model
def test_a_store_of_fp32_vectors_refuses_the_int8_model_until_reindex(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    fp32 = engram.load_settings(database_url=url, embedder="local", embedding_cache_size=0)
    int8 = engram.load_settings(database_url=url, embedder="local", embedding_cache_size=0, embedding_model=INT8)
    with engram.Memory(settings=fp32) as m:
        m.store("cat", "A cat is sleeping on the sofa.")
        m.store("rates", "Interest rates rose by half a point.")
        assert m.stats().embedding_model == "all-MiniLM-L6-v2"
    with pytest.raises(engram.ConfigError, match="engram reindex"):
        engram.Memory(settings=int8)  # never a mix of fp32 and int8 vectors in one index
    with engram.Memory(settings=int8, check_embedder=False) as m:
        assert m.reindex() == 2
        assert m.stats().embedding_model == INT8
    with engram.Memory(settings=int8) as m:
        assert m.search("a kitten naps on the couch", mode="vector").results[0].entry.key == "cat"
    with pytest.raises(engram.ConfigError, match="engram reindex"):
        engram.Memory(settings=fp32)  # and back again only by reindex


def test_threads_must_be_a_positive_whole_number() -> None:
    from engram.embeddings.local import LocalEmbedder

    for bad in (0, -1, 1.5, True):
        with pytest.raises(engram.InvalidInput, match="threads"):
            LocalEmbedder(threads=bad)  # type: ignore[arg-type]


def test_token_batches_cover_every_text_once_within_the_budget() -> None:
    lengths = [5, 300, 12, 12, 7, 40, 40, 41, 3, 100, 9, 9, 9, 9]
    batches = list(token_batches(lengths, max_texts=4, max_tokens=100))
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths)  # shortest first: like lengths share a batch
    for b in batches:
        assert len(b) <= 4
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 100  # a text over the budget goes alone
    assert [300] in [[lengths[i] for i in b] for b in batches]


# -- overlapped ingest ------------------------------------------------------------
def test_overlap_prepares_ahead_and_writes_in_order_once() -> None:
    events: list[str] = []
    second_prepared = threading.Event()

    def prepare(n: int) -> int:
        events.append(f"prepare {n}")
        if n == 2:
            second_prepared.set()
        return n * 10

    def write(n: int, prepared: int) -> None:
        if n == 1:  # batch 2 is embedded while batch 1 is written
            assert second_prepared.wait(5)
        events.append(f"write {n}:{prepared}")

    overlapped([1, 2, 3], prepare, write)
    assert [e for e in events if e.startswith("write")] == ["write 1:10", "write 2:20", "write 3:30"]
    assert sorted(e for e in events if e.startswith("prepare")) == ["prepare 1", "prepare 2", "prepare 3"]


def test_overlap_stops_where_the_plain_loop_stops() -> None:
    written: list[int] = []

    def prepare(n: int) -> int:
        if n == 3:
            raise RuntimeError("embedder down")
        return n

    with pytest.raises(RuntimeError, match="embedder down"):
        overlapped([1, 2, 3, 4], prepare, lambda n, _: written.append(n))
    assert written == [1, 2]  # as embed/write one by one: what came before the failure, nothing after

    written.clear()

    def failing_write(n: int, _: int) -> None:
        if n == 2:
            raise OSError("disk full")
        written.append(n)

    with pytest.raises(OSError):
        overlapped([1, 2, 3], lambda n: n, failing_write)
    assert written == [1]

    with pytest.raises(KeyError), Overlap() as overlap:  # leaving by an error drops the pending batch
        overlap.submit(lambda: 1, written.append)
        raise KeyError("caller failed")
    assert written == [1]


class _ThreadNotingEmbedder:
    """Deterministic 3-d vectors; notes every text embedded and the thread that embedded it."""

    name = "test-threads"
    dimensions = 3

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.threads: set[str] = set()

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts += texts
        self.threads.add(threading.current_thread().name)
        return _unit(texts)


def _unit(texts: list[str]) -> np.ndarray:
    v = np.array([[len(t) + 1.0, t.count("e") + 1.0, sum(map(ord, t)) % 97 + 1.0] for t in texts], dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'o.db'}"


def _memory(url: str, embedder: _ThreadNotingEmbedder, monkeypatch: pytest.MonkeyPatch) -> engram.Memory:
    import engram.memory.semantic as semantic

    monkeypatch.setattr(semantic, "create_embedder", lambda settings: embedder)
    # batch size 1 -> reindex batches of 4: several batches, so several overlaps
    return engram.Memory(settings=engram.load_settings(database_url=url, embedder="none", embedding_batch_size=1,
                                                       embedding_cache_size=0))


def test_reindex_embeds_in_the_background_and_writes_each_entry_once(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    embedder = _ThreadNotingEmbedder()
    contents = [f"entry number {i} " + "e" * (i % 5) for i in range(23)]
    with _memory(url, embedder, monkeypatch) as m:
        for i, c in enumerate(contents):
            m.store(f"k{i:02}", c, embed=False)
        assert embedder.texts == []
        assert m.reindex() == 23
        assert sorted(embedder.texts) == sorted(contents)  # each embedded once
        assert embedder.threads and all(t.startswith("engram-ingest") for t in embedder.threads)
        assert m.backend.count_vectors(None) == 23
        found = m.backend.get_vectors([("default", f"k{i:02}") for i in range(23)])
        assert np.allclose(np.vstack([found[("default", f"k{i:02}")] for i in range(23)]), _unit(contents), atol=1e-6)
        assert m.reindex() == 0  # nothing left without a vector


def test_import_embeds_the_next_batch_while_writing_and_stores_each_once(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engram import transfer

    monkeypatch.setattr(transfer, "BATCH", 4)
    contents = [f"imported {i} " + "e" * (i % 3) for i in range(17)]
    with engram.Memory(settings=engram.load_settings(database_url="memory://", embedder="none")) as src:
        src.store_many([{"key": f"k{i:02}", "content": c} for i, c in enumerate(contents)], embed=False)
        src.export(tmp_path / "dump.jsonl")
    embedder = _ThreadNotingEmbedder()
    done: list[int] = []
    with _memory(url, embedder, monkeypatch) as m:
        m.import_(tmp_path / "dump.jsonl", progress=done.append)
        assert sorted(embedder.texts) == sorted(contents)
        assert embedder.threads and all(t.startswith("engram-ingest") for t in embedder.threads)
        assert sum(done) == 17 and m.backend.count_vectors(None) == 17
        assert sorted(e.key for e in m.list(limit=100)) == [f"k{i:02}" for i in range(17)]
        found = m.backend.get_vectors([("default", f"k{i:02}") for i in range(17)])
        assert np.allclose(np.vstack([found[("default", f"k{i:02}")] for i in range(17)]), _unit(contents), atol=1e-6)
        m.import_(tmp_path / "dump.jsonl")  # twice is once
        assert m.backend.count_vectors(None) == 17 and len(m.list(limit=100)) == 17


# -- int8 queries over fp32 entries -----------------------------------------------
@needs_model
def test_queries_run_on_the_int8_graph_within_cosine_0998_of_exact(texts: list[str]) -> None:
    from engram.embeddings.local import LocalEmbedder

    fast, exact = LocalEmbedder(threads=2), LocalEmbedder(threads=2, int8_queries=False)
    assert (fast.name, fast.query_name, exact.query_name) == ("all-MiniLM-L6-v2", "all-MiniLM-L6-v2+int8-queries", None)
    queries = [t for t in texts if t][:80]
    quick, precise = fast.embed_queries(queries), exact.embed(queries)
    cosine = np.sum(quick * precise, axis=1)
    assert cosine.min() >= 0.99, f"min cosine {cosine.min():.4f}"
    assert cosine.mean() >= 0.998
    assert not np.array_equal(quick, precise)  # really the int8 graph
    assert np.array_equal(fast.embed(queries), precise)  # what is stored stays exact
    assert np.array_equal(exact.embed_queries(queries), precise)
    assert LocalEmbedder(INT8).query_name is None  # a model already int8 has one way


@needs_model
def test_search_embeds_its_query_the_fast_way_and_stores_exactly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    with engram.Memory(settings=engram.load_settings(database_url=url, embedder="local")) as m:
        seen: list[str] = []
        threads: list[int | None] = []
        embed_queries = m.embedder.embed_queries

        def recorded(texts: list[str], threads_: int | None = None, **kw: int | None) -> np.ndarray:
            seen.extend(texts)
            threads.append(kw.get("threads", threads_))
            return embed_queries(texts, threads=threads[-1])

        m.embedder.embed_queries = recorded
        m.store("cat", "A cat is sleeping on the sofa.")
        m.store("rates", "Interest rates rose by half a point.")
        assert seen == []  # entries: the exact graph
        assert m.search("a kitten naps on the couch", mode="vector").results[0].entry.key == "cat"
        assert m.search("a kitten naps on the couch", mode="hybrid").results[0].entry.key == "cat"
        assert seen == ["a kitten naps on the couch"]  # once: the second search took it from the cache
        m.search("a dog barks at the mailman", mode="hybrid")  # its words' list runs beside: one thread
        assert threads == [None, 1]
        # A query equal to a stored text is still embedded the query way, never from the store's vectors.
        m.search("A cat is sleeping on the sofa.", mode="vector")
        assert threads[-1] is None
        assert seen[-1] == "A cat is sleeping on the sofa."
    exact = engram.load_settings(database_url=url, embedder="local", int8_queries=False)
    with engram.Memory(settings=exact) as m:
        assert m.embedder.query_name is None
        assert m.search("a kitten naps on the couch", mode="vector").results[0].entry.key == "cat"


@needs_model
def test_queries_fall_back_to_exact_vectors_when_the_int8_graph_cannot_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engram.embeddings import local, quantize

    fp32 = local.LocalEmbedder()._model().onnx_path
    monkeypatch.setattr(local, "_models", {})
    monkeypatch.setattr(local, "onnx_cache_dir", lambda: tmp_path)
    monkeypatch.setattr(local, "_fp32_graph", lambda model_dir: fp32)

    def broken(source: Path, target: Path, layers: int) -> Path:
        raise OSError("disk full")

    monkeypatch.setattr(quantize, "quantize_onnx", broken)
    e = local.LocalEmbedder(threads=1)
    queries = ["what did the lecturer say", "a cat on the sofa"]
    assert np.array_equal(e.embed_queries(queries), e.embed(queries))  # exact, never an error
    assert e.query_name is None  # and no longer cached as int8 queries
