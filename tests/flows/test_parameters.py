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
    assert item["type"] == "object" and set(item["properties"]) == {"name", "estimator", "params"}
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


def test_split_classifiers_and_to_specs_round_trip_mixed_entries():
    from flows.parameters import CustomClassifier, split_classifiers, to_specs

    forest = ClassifierSpec("forest", "sklearn.ensemble.RandomForestClassifier", {"n_estimators": 5})
    names, custom = split_classifiers([ClassifierSpec("rbf_svm"), forest, ClassifierSpec("decision_tree")])
    assert names == ["rbf_svm", "decision_tree"]
    assert custom == [
        {"name": "forest", "estimator": "sklearn.ensemble.RandomForestClassifier", "params": {"n_estimators": 5}}
    ]
    specs = to_specs(names, [CustomClassifier(**custom[0])])
    assert specs == [ClassifierSpec("rbf_svm"), ClassifierSpec("decision_tree"), forest]
    assert to_specs(names) == specs[:2]


def test_a_bad_name_is_refused_in_process_naming_the_valid_names():
    from prefect.exceptions import ParameterTypeError

    from flows.ml_workflow import ml_workflow

    with pytest.raises(ParameterTypeError) as info:
        ml_workflow.validate_parameters({"dataset": "data/moon.txt", "classifiers": ["rbf_svm", "bogus_name"]})
    message = str(info.value)
    assert "classifiers.1" in message  # the entry, by position
    assert all(name in message for name in SEED_CLASSIFIERS), message
