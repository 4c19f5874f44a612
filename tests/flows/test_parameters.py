"""The flows' parameters as the Prefect UI sees them: JSON schemas that make proper forms."""

from __future__ import annotations

import pytest

from mltoolkit.analysis.classifiers import ClassifierSpec
from tests.constants import SEED_CLASSIFIERS


def _schema(flow) -> dict:
    from prefect.utilities.callables import parameter_schema

    return parameter_schema(flow.fn).model_dump()


def _resolve(schema: dict, node: dict) -> dict:
    """``node`` with a ``$ref`` into the schema's definitions followed."""
    reference = node.get("$ref")
    if reference is None:
        return node
    return schema["definitions"][reference.rsplit("/", 1)[-1]]


def test_classifiers_are_a_multi_select_of_the_registered_names():
    from flows.ml_workflow import ml_workflow

    schema = _schema(ml_workflow)
    classifiers = schema["properties"]["classifiers"]
    assert classifiers["type"] == "array"
    items = _resolve(schema, classifiers["items"])
    assert "anyOf" not in items  # a union renders as free-text JSON boxes
    assert items["enum"] == SEED_CLASSIFIERS
    assert "classifiers" in schema["required"]


def test_custom_classifiers_are_a_separate_optional_list_of_objects():
    from flows.ml_workflow import ml_workflow

    schema = _schema(ml_workflow)
    custom = schema["properties"]["custom_classifiers"]
    assert "custom_classifiers" not in schema["required"]
    array = next(option for option in custom["anyOf"] if option.get("type") == "array")
    item = _resolve(schema, array["items"])
    assert item["type"] == "object" and set(item["properties"]) == {"name", "estimator", "params", "position"}
    assert item["required"] == ["name", "estimator"]
    assert custom["position"] == schema["properties"]["classifiers"]["position"] + 1  # next to it in the form


@pytest.mark.parametrize("flow_name", ["ml_workflow", "spec_workflow", "seed_spec_workflow"])
def test_parameter_descriptions_are_plain_text(flow_name):
    import flows.ml_workflow
    import flows.spec_workflow

    flow = getattr(flows.ml_workflow, flow_name, None) or getattr(flows.spec_workflow, flow_name)
    properties = _schema(flow)["properties"]
    assert all(properties[name].get("description") for name in properties), "every parameter is described"
    assert not [name for name, entry in properties.items() if "`" in entry["description"]]


FOREST = ClassifierSpec("forest", "sklearn.ensemble.RandomForestClassifier", {"n_estimators": 5})
TREES = ClassifierSpec("trees", "sklearn.ensemble.ExtraTreesClassifier", {})


@pytest.mark.parametrize(
    "order",
    [
        ["rbf_svm", FOREST, "decision_tree"],  # a custom one in the middle keeps its place (and folder index)
        [FOREST, "rbf_svm", TREES, "decision_tree"],
        ["rbf_svm", "decision_tree", FOREST, TREES],
        [FOREST, TREES],
        ["rbf_svm"],
    ],
)
def test_split_classifiers_and_to_specs_keep_the_order_of_a_mixed_list(order):
    from flows.parameters import CustomClassifier, split_classifiers, to_specs

    specs = [ClassifierSpec(entry) if isinstance(entry, str) else entry for entry in order]
    names, custom = split_classifiers(specs)
    assert names == [entry for entry in order if isinstance(entry, str)]
    assert [entry["name"] for entry in custom] == [spec.name for spec in specs if spec.estimator]
    assert to_specs(names, [CustomClassifier(**entry) for entry in custom]) == specs


def test_custom_classifiers_without_a_position_come_last_and_big_positions_are_clamped():
    from flows.parameters import CustomClassifier, to_specs

    forest, trees = (
        CustomClassifier(name=spec.name, estimator=spec.estimator or "", params=dict(spec.params), position=position)
        for spec, position in ((FOREST, None), (TREES, 99))
    )
    names = ["rbf_svm", "decision_tree"]
    assert [spec.name for spec in to_specs(names, [forest, trees])] == ["rbf_svm", "decision_tree", "trees", "forest"]
    assert [spec.name for spec in to_specs(names, [trees.model_copy(update={"position": 0}), forest])] == [
        "trees",
        "rbf_svm",
        "decision_tree",
        "forest",
    ]


def test_a_bad_name_is_refused_in_process_naming_the_valid_names():
    from prefect.exceptions import ParameterTypeError

    from flows.ml_workflow import ml_workflow

    with pytest.raises(ParameterTypeError) as info:
        ml_workflow.validate_parameters({"dataset": "data/moon.txt", "classifiers": ["rbf_svm", "bogus_name"]})
    message = str(info.value)
    assert "classifiers.1" in message  # the entry, by position
    assert all(name in message for name in SEED_CLASSIFIERS), message
