"""Entity ids: quoted paths, stage paths shared by subworkflow instances, unique ids."""

from __future__ import annotations

import pytest

from mltoolkit.workdir.provenance.ids import EntityIds, is_uri, quote_path, stage_path


@pytest.mark.parametrize(
    "scope, stage, expected",
    [("", "data_prep", "/data_prep"), ("/map/3", "stage1", "/map/stage1"), ("/a/0/b/12", "s t", "/a/b/s%20t")],
)
def test_instances_of_a_subworkflow_share_the_stage_path(scope, stage, expected):
    assert stage_path(scope, stage) == expected


def test_paths_are_quoted_and_absolute():
    assert quote_path("step one/é") == "/step%20one/%C3%A9"
    assert quote_path("/already") == "/already"


@pytest.mark.parametrize(
    "key, expected", [("a/b.pkl", False), ("file:///x", True), ("https://x.org/y", True), ("C:/x", False)]
)
def test_uris_are_told_from_paths(key, expected):
    assert is_uri(key) is expected


def test_a_repeated_id_gets_a_distinct_variant():
    ids = EntityIds()
    ids.claim("#taken")

    assert ids.unique("#free", 0) == "#free"
    assert ids.unique("#free", 4) == "#free~4"
    assert ids.unique("#free", 4) == "#free~4.1"
    assert ids.unique("#taken", 7) == "#taken~7"
