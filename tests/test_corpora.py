"""The shared-corpus helper: a missing corpus skips the test, and fails it under ``CI=true``."""

from __future__ import annotations

from pathlib import Path

import corpora
import pytest


def test_a_present_corpus_is_returned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "some-corpus").mkdir()
    monkeypatch.setattr(corpora, "SHARED", tmp_path)
    monkeypatch.setenv("CI", "true")
    assert corpora.corpus("some-corpus") == tmp_path / "some-corpus"


def test_a_missing_corpus_skips_outside_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corpora, "SHARED", tmp_path)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="'gone' is not at"):
        corpora.corpus("gone")


@pytest.mark.parametrize("value", ["true", "True", "1"])
def test_a_missing_corpus_fails_under_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setattr(corpora, "SHARED", tmp_path)
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="CI=true requires it"):
        corpora.corpus("gone")


def test_the_feedparser_corpus_is_where_the_tests_look() -> None:
    """The path the corpus tests use is ../shared/corpora from the project's root."""
    root = Path(__file__).resolve().parents[1]
    assert root.parent / "shared" / "corpora" == corpora.SHARED
