"""Full-text search and its query language, identical on every backend with FTS."""

from __future__ import annotations

import pytest

import engram

pytestmark = pytest.mark.requires("fts")

CORPUS = {
    "fox": "The quick brown fox jumps over the lazy dog",
    "fox-alert": "A quick fox, never lazy, guards the hen house",
    "brown-quick": "brown and quick are two words; brown quick in reverse",
    "runner": "She is running in the park every morning",
    "runs": "He runs daily",
    "swimmer": "Swimming is great exercise for the whole body",
    "cat": "The cat sleeps on the sofa all afternoon",
    "dog": "My dog barks at the postman",
    "angry-cat": "An angry cat hisses at everyone",
    "cafe": "Meet me at the Café de Flore",
    "mail-note": "Send an e-mail to the team",
    "elephants": "Elephants never forget",
}
# Unrelated entries so that the words of interest are rare enough for BM25's idf.
FILLER = [f"filler text number {i} about nothing in particular" for i in range(20)]


@pytest.fixture
def corpus(memory):
    memory.store_many([{"key": k, "content": v} for k, v in CORPUS.items()])
    memory.store_many([{"key": f"filler-{i}", "content": t} for i, t in enumerate(FILLER)], namespace="filler")
    return memory


def keys(result: engram.SearchResult) -> set[str]:
    return {hit.entry.key for hit in result.results}


def test_result_shape(corpus):
    result = corpus.search("fox")
    assert isinstance(result, engram.SearchResult)
    assert result.count == len(result.results) == 2
    for hit in result.results:
        assert isinstance(hit, engram.SearchHit)
        assert isinstance(hit.entry, engram.Entry)
        assert hit.match_type == "fts"
        assert isinstance(hit.score, float)
        assert hit.entry == corpus.get(hit.entry.key)


def test_no_match_is_an_empty_result(corpus):
    result = corpus.search("xylophone")
    assert result.count == 0
    assert result.results == []


def test_plain_words_are_implicit_and(corpus):
    assert keys(corpus.search("quick fox")) == {"fox", "fox-alert"}
    assert keys(corpus.search("quick fox jumps")) == {"fox"}
    assert keys(corpus.search("quick fox postman")) == set()


def test_explicit_and_equals_implicit_and(corpus):
    assert keys(corpus.search("quick AND fox AND jumps")) == keys(corpus.search("quick fox jumps")) == {"fox"}


@pytest.mark.parametrize(
    "query, expected",
    [
        ("run", {"runner", "runs"}),
        ("running", {"runner", "runs"}),
        ("runs", {"runner", "runs"}),
        ("swim", {"swimmer"}),
        ("elephant", {"elephants"}),
    ],
)
def test_words_are_stemmed(corpus, query, expected):
    assert keys(corpus.search(query)) == expected


@pytest.mark.parametrize("query", ["PARK", "Park", "pArK"])
def test_case_insensitive(corpus, query):
    assert keys(corpus.search(query)) == {"runner"}


def test_diacritics_are_folded(corpus):
    assert keys(corpus.search("cafe")) == {"cafe"}
    assert keys(corpus.search("CAFÉ")) == {"cafe"}


def test_exact_phrase(corpus):
    assert keys(corpus.search('"quick brown"')) == {"fox"}
    assert keys(corpus.search('"brown quick"')) == {"brown-quick"}
    assert keys(corpus.search("quick brown")) == {"fox", "brown-quick"}
    assert keys(corpus.search('"lazy fox"')) == set()


def test_phrase_is_stemmed_and_case_insensitive(corpus):
    assert keys(corpus.search('"IS RUN IN THE PARK"')) == {"runner"}


def test_punctuation_inside_a_word_makes_a_phrase(corpus):
    assert keys(corpus.search("e-mail")) == {"mail-note"}
    assert keys(corpus.search("email")) == set()


def test_or(corpus):
    assert keys(corpus.search("cat OR dog")) == {"cat", "angry-cat", "dog", "fox"}
    assert keys(corpus.search("postman OR sofa OR xylophone")) == {"dog", "cat"}


def test_and_binds_tighter_than_or(corpus):
    assert keys(corpus.search("angry cat OR postman")) == {"angry-cat", "dog"}
    assert keys(corpus.search("cat AND angry OR barks")) == {"angry-cat", "dog"}


def test_lower_case_operators_are_words(corpus):
    assert keys(corpus.search("cat or dog")) == set()  # needs the words "cat", "or" and "dog"
    assert keys(corpus.search("brown and quick")) == {"brown-quick"}


def test_prefix(corpus):
    assert keys(corpus.search("eleph*")) == {"elephants"}
    assert keys(corpus.search("pos*")) == {"dog"}
    assert keys(corpus.search("qui*")) == {"fox", "fox-alert", "brown-quick"}
    assert keys(corpus.search("quiz*")) == set()


def test_phrase_prefix(corpus):
    assert keys(corpus.search('"quick bro"*')) == {"fox"}


@pytest.mark.parametrize("query", ["fox -lazy", "fox NOT lazy", "-lazy fox", "NOT lazy fox"])
def test_excluded_terms(corpus, query):
    assert keys(corpus.search("fox")) == {"fox", "fox-alert"}
    assert keys(corpus.search(query)) == set()


def test_excluding_one_of_two(corpus):
    assert keys(corpus.search("quick -jumps")) == {"fox-alert", "brown-quick"}
    assert keys(corpus.search("cat -angry")) == {"cat"}
    assert keys(corpus.search("cat -angry -sofa")) == set()
    assert keys(corpus.search('quick -"quick brown"')) == {"fox-alert", "brown-quick"}


def test_parentheses(corpus):
    assert keys(corpus.search("(cat OR dog) -angry")) == {"cat", "dog", "fox"}
    assert keys(corpus.search("(cat OR dog) AND (sofa OR postman)")) == {"cat", "dog"}
    assert keys(corpus.search("quick (jumps OR guards)")) == {"fox", "fox-alert"}
    assert keys(corpus.search("cat -(angry OR sofa)")) == set()
    assert keys(corpus.search("((cat))")) == {"cat", "angry-cat"}


def test_key_is_searched_too(memory):
    memory.store("zebra-notes", "nothing interesting here")
    memory.store("other", "nothing at all")
    assert keys(memory.search("zebra")) == {"zebra-notes"}
    assert keys(memory.search("zebra nothing")) == {"zebra-notes"}  # one word in the key, one in content
    assert keys(memory.search('"zebra notes"')) == {"zebra-notes"}


def test_backend_syntax_is_just_words(corpus):
    corpus.store("near", "NEAR the station, col: term ^ caret")
    assert keys(corpus.search("NEAR(station)")) == {"near"}
    assert keys(corpus.search("col:term")) == {"near"}
    assert keys(corpus.search("^station")) == {"near"}
    assert keys(corpus.search("content:station")) == set()  # "content station" is a phrase, not a column


def test_namespace_scoping(memory):
    memory.store("a", "shared secret words", namespace="alpha")
    memory.store("b", "shared secret words", namespace="beta")
    memory.store("c", "shared words", namespace="alphabet")

    alpha = memory.search("shared", namespace="alpha")
    assert [(h.entry.namespace, h.entry.key) for h in alpha.results] == [("alpha", "a")]
    assert keys(memory.search("shared", namespace="beta")) == {"b"}
    assert keys(memory.search("shared")) == {"a", "b", "c"}
    assert memory.search("shared", namespace="gamma").count == 0


def test_namespace_name_is_not_searchable_text(memory):
    memory.store("k", "plain content", namespace="unicorn")
    assert memory.search("unicorn").count == 0
    assert keys(memory.search("content", namespace="unicorn")) == {"k"}


def test_metadata_filter(memory):
    memory.store("a", "project notes", metadata={"project": "apollo", "draft": True})
    memory.store("b", "project notes", metadata={"project": "gemini", "draft": False})
    memory.store("c", "project notes", metadata={"project": {"name": "apollo"}})
    assert keys(memory.search("notes", metadata={"project": "apollo"})) == {"a"}
    assert keys(memory.search("notes", metadata={"draft": False})) == {"b"}
    assert keys(memory.search("notes", metadata={"project.name": "apollo"})) == {"c"}
    assert keys(memory.search("notes", metadata={"project": "apollo"}, namespace="other")) == set()


def test_limit(memory):
    memory.store_many([{"key": f"k{i}", "content": "apple " * (i + 1) + "pie"} for i in range(15)])
    memory.store_many([{"key": f"f{i}", "content": "unrelated filler"} for i in range(20)])
    everything = memory.search("apple", limit=100)
    assert everything.count == 15
    top = memory.search("apple", limit=3)
    assert top.count == 3
    assert [h.entry.key for h in top.results] == [h.entry.key for h in everything.results[:3]]
    assert memory.search("apple").count == 10  # the default limit


def test_best_first_and_higher_is_better(memory):
    memory.store("weak", "apple banana cherry date elderberry fig grape honeydew kiwi lemon")
    memory.store("strong", "apple apple apple")
    memory.store("middle", "apple banana apple cherry")
    memory.store_many([{"key": f"f{i}", "content": "unrelated filler"} for i in range(20)])

    result = memory.search("apple")
    assert [h.entry.key for h in result.results] == ["strong", "middle", "weak"]
    scores = [h.score for h in result.results]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > scores[-1]
    assert all(s > 0 for s in scores)


def test_rarer_term_scores_higher(memory):
    memory.store("rare", "common zebra")
    memory.store_many([{"key": f"c{i}", "content": "common words"} for i in range(10)])
    memory.store_many([{"key": f"f{i}", "content": "unrelated filler"} for i in range(20)])
    result = memory.search("common OR zebra")
    assert result.results[0].entry.key == "rare"


def test_search_sees_updates_and_deletes(memory):
    memory.store("k", "original wording")
    memory.store("k", "replacement text")
    assert memory.search("original").count == 0
    assert keys(memory.search("replacement")) == {"k"}
    memory.delete("k")
    assert memory.search("replacement").count == 0


def test_search_after_delete_namespace_and_prune(memory):
    memory.store("a", "vanishing words", namespace="n")
    memory.store("b", "vanishing words", ttl=0.05)
    memory.store("c", "vanishing words")
    memory.delete_namespace("n")
    import time

    time.sleep(0.1)
    memory.prune()
    assert keys(memory.search("vanishing")) == {"c"}


def test_unicode_and_digits(memory):
    memory.store("ru", "Привет мир")
    memory.store("num", "error code 404 returned")
    assert keys(memory.search("мир")) == {"ru"}
    assert keys(memory.search("404")) == {"num"}
    assert keys(memory.search("40*")) == {"num"}


@pytest.mark.parametrize(
    "query, words",
    [
        ("", ["no words"]),
        ("   ", ["no words"]),
        ("*", ["no words"]),
        ("!!! ???", ["no words"]),
        ('"unclosed phrase', ["quote", "position 0"]),
        ('fine "unclosed', ["quote", "position 5"]),
        ("(a", ["'('", "position 0"]),
        ("a)", ["')'", "position 1"]),
        ("(a OR b", ["'('"]),
        ("AND", ["AND"]),
        ("a AND", ["AND", "after"]),
        ("AND a", ["AND", "before"]),
        ("OR b", ["OR", "before"]),
        ("a OR", ["OR", "after"]),
        ("a OR OR b", ["OR"]),
        ("NOT", ["NOT"]),
        ("a NOT", ["NOT"]),
        ("-a", ["only exclude"]),
        ("NOT a", ["only exclude"]),
        ("-a -b", ["only exclude"]),
        ("a OR -b", ["OR"]),
        ("()", ["no words"]),
        ("(" * 17 + "a" + ")" * 17, ["16"]),
        ("x" * 5000, ["4096"]),
        (" ".join(f"w{i}" for i in range(65)), ["65 terms", "64"]),
    ],
)
def test_malformed_queries_raise_query_syntax_error(corpus, query, words):
    with pytest.raises(engram.QuerySyntaxError) as info:
        corpus.search(query)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, engram.InvalidInput)
    for word in words:
        assert word in str(info.value), f"{word!r} not in {str(info.value)!r}"


def test_query_must_be_a_string(corpus):
    with pytest.raises(engram.InvalidInput, match="query must be a string"):
        corpus.search(None)
    with pytest.raises(engram.InvalidInput, match="query must be a string"):
        corpus.search(b"fox")


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"limit": 0}, ["limit"]),
        ({"limit": 20_000}, ["limit"]),
        ({"namespace": ""}, ["namespace"]),
        ({"namespace": "a\x00"}, ["namespace"]),
        ({"metadata": {"bad key": 1}}, ["metadata"]),
    ],
)
def test_invalid_search_arguments(corpus, kwargs, words):
    with pytest.raises(engram.InvalidInput) as info:
        corpus.search("fox", **kwargs)
    for word in words:
        assert word in str(info.value)


def test_queries_at_the_limits_work(corpus):
    at_depth = "(" * 16 + "fox" + ")" * 16
    assert keys(corpus.search(at_depth)) == {"fox", "fox-alert"}
    sixty_four = " OR ".join(["fox"] + [f"w{i}" for i in range(63)])
    assert keys(corpus.search(sixty_four)) == {"fox", "fox-alert"}
    padded = "fox" + " " * 4000
    assert keys(corpus.search(padded)) == {"fox", "fox-alert"}
    assert keys(corpus.search("-" * 3000 + "fox")) == {"fox", "fox-alert"}  # an even number of negations
    assert keys(corpus.search("quick " + "NOT " * 999 + "jumps")) == {"fox-alert", "brown-quick"}
