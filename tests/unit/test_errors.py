"""The error tree: built-in bases where the meaning matches, status and exit codes."""

from __future__ import annotations

import inspect

import pytest

import engram
from engram import errors


@pytest.mark.parametrize(
    "cls, bases",
    [
        (errors.InvalidInput, (errors.EngramError, ValueError)),
        (errors.QuerySyntaxError, (errors.InvalidInput, ValueError)),
        (errors.ContentTooLarge, (errors.InvalidInput, ValueError)),
        (errors.ConfigError, (errors.InvalidInput, ValueError)),
        (errors.NotFound, (errors.EngramError, KeyError)),
        (errors.Conflict, (errors.EngramError,)),
        (errors.MissingDependency, (errors.EngramError, ImportError)),
        (errors.BackendError, (errors.EngramError,)),
    ],
)
def test_subclass_relations(cls, bases):
    for base in bases:
        assert issubclass(cls, base), f"{cls.__name__} is not a {base.__name__}"


def test_unrelated_branches_stay_apart():
    assert not issubclass(errors.NotFound, ValueError)
    assert not issubclass(errors.Conflict, ValueError)
    assert not issubclass(errors.BackendError, ValueError)
    assert not issubclass(errors.InvalidInput, KeyError)
    assert not issubclass(errors.QuerySyntaxError, errors.ContentTooLarge)


def test_every_error_is_an_engram_error_with_status_and_exit_code():
    classes = [getattr(errors, name) for name in errors.__all__]
    assert errors.EngramError in classes
    for cls in classes:
        assert issubclass(cls, errors.EngramError)
        assert isinstance(cls.status, int) and 400 <= cls.status <= 599, cls
        assert cls.exit_code in (1, 2), cls


def test_exit_code_is_2_exactly_for_bad_input():
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert (cls.exit_code == 2) == issubclass(cls, errors.InvalidInput), name


@pytest.mark.parametrize(
    "cls, status",
    [
        (errors.InvalidInput, 422),
        (errors.QuerySyntaxError, 400),
        (errors.ContentTooLarge, 413),
        (errors.ConfigError, 400),
        (errors.NotFound, 404),
        (errors.Conflict, 409),
        (errors.BackendError, 503),
    ],
)
def test_http_status(cls, status):
    assert cls.status == status


def test_every_error_class_is_drawn_in_the_tree():
    defined = {
        name
        for name, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, errors.EngramError) and obj.__module__ == errors.__name__
    }
    assert defined == set(errors.__all__)
    for name in defined:
        assert name in errors.__doc__, f"{name} is missing from the tree in the docstring"


def test_not_found_prints_its_message_not_a_repr():
    exc = errors.NotFound("session 42 does not exist")
    assert str(exc) == "session 42 does not exist"
    assert exc.message == "session 42 does not exist"
    assert str(KeyError("x")) == "'x'"  # what KeyError would have done


def test_message_of_an_error_without_arguments():
    assert errors.Conflict().message == "Conflict"
    assert str(errors.BackendError()) == "BackendError"


def test_catchable_as_builtins():
    with pytest.raises(ValueError):
        raise errors.QuerySyntaxError("bad query")
    with pytest.raises(KeyError):
        raise errors.NotFound("gone")
    with pytest.raises(ImportError):
        raise errors.MissingDependency("pip install 'engram[x]'")


def test_errors_are_exported_from_the_package():
    for name in ("EngramError", "InvalidInput", "QuerySyntaxError", "ContentTooLarge", "ConfigError",
                 "NotFound", "Conflict", "MissingDependency", "BackendError"):  # fmt: skip
        assert getattr(engram, name) is getattr(errors, name)
