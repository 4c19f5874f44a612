"""The Prefect UI as a user sees it: a real headless Chromium on a real server with the deployments run.

A real ``prefect server start`` (with its UI) on 127.0.0.1, a process work pool,
``prefect deploy --all`` and a worker (the fixtures of the deployments' end-to-end
test), the ``seed-analysis`` and ``seed-spec`` deployments run through the worker;
then Debian's Chromium, driven by Playwright (never a downloaded browser), opens
the default UI's pages: each flow run's graph, task runs and artifacts, and the
``seed-analysis`` custom-run form. Screenshots go to ``docs/ui/`` (the README shows
them). Every wait is for a selector, a response or a condition, bounded; the
browser, the worker and the server are stopped also when a test fails.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.constants import REPO_ROOT, SEED_CLASSIFIERS, SEED_SCORES
from tests.deployments.test_deployments_e2e import (  # the deployments' real server, pool, worker and helpers
    _run_deployment,
    deployed,  # noqa: F401 (a fixture: pytest finds it here)
    real_server,  # noqa: F401 (a fixture: pytest finds it here)
)

pytestmark = pytest.mark.slow

#: Chromium as root in a container, on a machine whose network is closed: no sandbox, no GPU,
#: and none of the background connections (QUIC, updates, sync) that would be refused.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO_ROOT / "docs" / "ui"
VIEWPORT = {"width": 1400, "height": 1000}
#: Bound of every wait in the browser (ms); pages of a local server load in a second or two.
TIMEOUT_MS = 30_000
#: A table's content is at most as wide as the box that shows it (no column runs off the right edge).
TABLES_FIT = """() => [...document.querySelectorAll('main table')]
    .every(table => table.scrollWidth <= table.parentElement.clientWidth + 1)"""
IMAGE_LOADED = """(selector) => [...document.querySelectorAll(selector)]
    .some(image => image.complete && image.naturalWidth > 0)"""


def _chromium() -> str:
    """Debian's Chromium (``.ci/run`` installs it when missing)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "no chromium on PATH: apt-get install chromium (.ci/run does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as playwright:
        # Playwright gives every launch a fresh temporary profile (--user-data-dir) of its own
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="module")
def ui(deployed: dict) -> dict[str, Any]:  # noqa: F811 (the fixture)
    """The seed deployments run once through the worker; the UI's address and the flow runs."""
    env = deployed["env"]
    runs = {}
    for name, folder in [("ml-workflow/seed-analysis", "native"), ("seed-spec-workflow/seed-spec", "spec")]:
        flow_run, _, _ = _run_deployment(env, name, {"workdir": str(deployed["base"] / f"ui-{folder}")})
        assert flow_run.state.is_completed(), (flow_run.state, deployed["processes"].log("worker"))
        runs[name] = flow_run
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return {"url": env["PREFECT_API_URL"].removesuffix("/api"), "env": env, "runs": runs}


def _ui_base(page: Any, ui: dict[str, Any]) -> str:
    """The address of the UI a browser gets by default (the server redirects ``/`` to it)."""
    page.goto(ui["url"] + "/")
    page.wait_for_url(re.compile(r"/dashboard"))
    return page.url.split("/dashboard", 1)[0]  # e.g. http://127.0.0.1:PORT/v2


def _open_flow_run(page: Any, ui: dict[str, Any], deployment: str) -> set[tuple[str, str]]:
    """Open the flow run's page; return the edges of the graph it drew, by label."""
    flow_run = ui["runs"][deployment]
    base = _ui_base(page, ui)
    with page.expect_response(lambda response: response.url.endswith(f"/flow_runs/{flow_run.id}/graph-v2")) as info:
        page.goto(f"{base}/runs/flow-run/{flow_run.id}")
    assert info.value.ok, info.value.status
    page.locator("canvas").first.wait_for(state="visible")  # the graph is drawn on a canvas
    nodes = dict(info.value.json()["nodes"])
    labels = {node_id: node["label"] for node_id, node in nodes.items()}
    return {(labels[parent["id"]], node["label"]) for node in nodes.values() for parent in node["parents"]}


def _open_tab(page: Any, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def _artifact_card(page: Any, key: str) -> Any:
    """The card of artifact ``key`` in a flow run's Artifacts tab (its title)."""
    return page.get_by_role("heading", name=key, exact=True)


def _open_artifact(page: Any, key: str) -> None:
    """From a flow run's Artifacts tab, open the artifact ``key``'s page."""
    _artifact_card(page, key).click()
    page.wait_for_url(re.compile(r"/artifacts/artifact/"))


def _table_rows(page: Any) -> list[list[str]]:
    page.locator("main table tbody tr").first.wait_for()
    return [row.locator("td").all_inner_texts() for row in page.locator("main table tbody tr").all()]


def _screenshot(page: Any, name: str) -> None:
    """Save the page to ``docs/ui/NAME`` (CSS transitions fast-forwarded: no half-open menus)."""
    page.screenshot(path=str(SCREENSHOTS / name), animations="disabled")


def _assert_image_loaded(page: Any, selector: str) -> None:
    page.wait_for_function(IMAGE_LOADED, arg=selector, timeout=TIMEOUT_MS)


def test_the_native_run_shows_task_runs_graph_scores_figure_and_files(ui, page):
    edges = _open_flow_run(page, ui, "ml-workflow/seed-analysis")
    assert {("data_prep", f"classify[{name}]") for name in SEED_CLASSIFIERS} <= edges
    assert {(f"classify[{name}]", "merge_and_plot") for name in SEED_CLASSIFIERS} <= edges

    _open_tab(page, "Task Runs")
    page.get_by_text("classify[rbf_svm]", exact=True).first.wait_for()

    _open_tab(page, "Artifacts")
    for key in ("ml-scores", "ml-figure", "ml-output-files", "ml-checksums"):
        _artifact_card(page, key).wait_for()
    _open_artifact(page, "ml-scores")
    scores = {name: round(float(score), 2) for name, score in _table_rows(page)}
    assert scores == SEED_SCORES

    page.go_back()
    _open_artifact(page, "ml-figure")
    _assert_image_loaded(page, 'main img[src^="data:image/png"]')
    page.get_by_text("merge_and_visualize/ml_results.png", exact=True).wait_for()  # relative, not this machine's path
    _screenshot(page, "artifact-figure.png")

    page.go_back()
    _open_artifact(page, "ml-output-files")
    hashes = [row[2] for row in _table_rows(page)]
    assert all(re.fullmatch(r"[0-9a-f]{12}…", digest) for digest in hashes), hashes  # short, full ones elsewhere
    assert page.evaluate(TABLES_FIT)
    page.get_by_placeholder("Search").fill("ml_results")
    page.get_by_role("cell", name="merge_and_visualize/ml_results.png", exact=True).wait_for()


def test_the_spec_run_shows_the_yadage_dag_its_figure_and_tables(ui, page):
    edges = _open_flow_run(page, ui, "seed-spec-workflow/seed-spec")
    classifications = [f"classification[{index}]" for index in range(len(SEED_CLASSIFIERS))]
    assert {("data_prep", name) for name in classifications} <= edges
    assert {(name, "merge_and_visualize") for name in classifications} | {("data_prep", "merge_and_visualize")} <= edges

    _open_tab(page, "Task Runs")
    page.get_by_text("classification[2]", exact=True).first.wait_for()

    _open_tab(page, "Artifacts")
    figure_key = "spec-image-merge-and-visualize-ml-results-png"
    for key in (figure_key, "spec-steps", "spec-output-files", "spec-checksums"):
        _artifact_card(page, key).wait_for()
    _screenshot(page, "flow-run-graph.png")

    _open_artifact(page, figure_key)
    _assert_image_loaded(page, 'main img[src^="data:image/png"]')

    page.go_back()
    _open_artifact(page, "spec-steps")
    rows = _table_rows(page)
    assert [row[:2] for row in rows] == [["/", "data_prep"]] + [["/", "classification"]] * 5 + [
        ["/", "merge_and_visualize"]
    ]
    assert rows[-1][-1] == "ml_result=merge_and_visualize/ml_results.png"
    assert page.evaluate(TABLES_FIT)
    _screenshot(page, "artifact-steps.png")

    page.go_back()
    _open_artifact(page, "spec-output-files")
    assert page.evaluate(TABLES_FIT)
    page.get_by_placeholder("Search").fill("ml_results")  # the table's own search: the figure is on page 2
    page.get_by_role("cell", name="merge_and_visualize/ml_results.png", exact=True).wait_for()


def _flow_runs_of(ui: dict[str, Any], deployment_id: Any) -> int:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with SyncPrefectClient(ui["env"]["PREFECT_API_URL"]) as client:
        return client.count_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))


def test_the_run_form_offers_the_registered_classifiers_and_refuses_a_bad_one(ui, page):
    from playwright.sync_api import expect

    deployment_id = ui["runs"]["ml-workflow/seed-analysis"].deployment_id
    page.goto(f"{_ui_base(page, ui)}/deployments/deployment/{deployment_id}/run")
    select = page.get_by_role("button", name="Select classifiers")
    select.wait_for()
    assert "`" not in page.locator("main").inner_text()  # descriptions are plain text, not docstring markup
    select.click()
    page.get_by_role("listbox").wait_for()
    assert page.get_by_role("option").all_inner_texts() == SEED_CLASSIFIERS
    _screenshot(page, "run-form.png")
    page.keyboard.press("Escape")

    # a name that is not registered, typed as JSON: the form sends it, the server refuses it
    runs_before = _flow_runs_of(ui, deployment_id)
    field = page.locator("div.group").filter(has=page.locator("label", has_text=re.compile(r"^classifiers$"))).last
    field.get_by_role("button", name="Open menu").click()
    page.get_by_role("menuitem", name="Use JSON Input").click()
    editor = field.locator(".cm-content")
    expect(editor).to_contain_text("nearest_neighbours")  # the editor has loaded the current value: replace it all
    editor.click()
    page.keyboard.press("Control+A")  # CodeMirror's select-all, then one insertion (no auto-closing)
    page.keyboard.insert_text('["rbf_svm", "bogus_name"]')
    expect(editor).to_have_text('["rbf_svm", "bogus_name"]')
    with page.expect_response(lambda response: response.url.endswith("/create_flow_run")) as info:
        page.get_by_role("button", name="Submit").click()
    assert info.value.status in (409, 422), (info.value.status, info.value.text(), info.value.request.post_data)
    error = page.get_by_text(re.compile(r"'bogus_name' is not one of")).first
    error.wait_for()
    assert all(name in error.inner_text() for name in SEED_CLASSIFIERS)
    assert page.url.endswith("/run")  # still on the form
    assert _flow_runs_of(ui, deployment_id) == runs_before
