"""The web UI in headless Chromium (Debian's ``chromium`` + ``chromedriver``, driven by
selenium) against a real conductor with two nodes: both nodes visible, a deployment
created in the UI starts, is edited, stopped, started and deleted from the UI, and user
data shows as text, never as markup."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from .conftest import Cluster, pid_alive, wait_for

pytestmark = pytest.mark.timeout(150)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
MARK = "<b>hello-from-the-ui</b>"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not Path(path).exists():
            pytest.fail(f"{path} is missing: apt-get install {package}")
    os.environ.setdefault("SE_AVOID_STATS", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--disable-extensions", "--disable-default-apps",
                "--no-proxy-server", "--window-size=1500,1000",
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def until(driver: WebDriver, predicate: Callable[[WebDriver], Any], what: str, timeout: float = 25) -> Any:
    def safe(d: WebDriver) -> Any:
        try:
            return predicate(d)
        except (StaleElementReferenceException, WebDriverException):
            return False  # the table was re-rendered under us: look again

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(safe)
    except Exception as exc:
        raise AssertionError(f"timed out waiting for {what}; page text:\n{driver.find_element(By.TAG_NAME, 'body').text}") from exc


def row(driver: WebDriver, table: str, attr: str, key: str) -> WebElement | None:
    found = driver.find_elements(By.CSS_SELECTOR, f"{table} tr[{attr}='{key}']")
    return found[0] if found else None


def click(driver: WebDriver, css: str) -> None:
    until(driver, lambda d: d.find_element(By.CSS_SELECTOR, css).is_displayed(), css)
    driver.find_element(By.CSS_SELECTOR, css).click()


def fill(driver: WebDriver, css: str, text: str) -> None:
    field = driver.find_element(By.CSS_SELECTOR, css)
    field.clear()
    field.send_keys(text)


def field_error(driver: WebDriver, field: str) -> str:
    box = driver.find_element(By.CSS_SELECTOR, f"#dep-form [data-error-for='{field}']")
    return box.text if box.is_displayed() else ""


def job(c: Cluster, name: str) -> dict[str, Any]:
    return c.get(name)["jobs"][0]


def test_ui_shows_nodes_and_manages_a_deployment(two_nodes: Cluster, browser: WebDriver) -> None:
    c = two_nodes
    d = browser
    token = (c.storage / "api-token").read_text().strip()
    d.get(f"{c.url}/ui?token={token}")

    # both nodes, healthy, with capacity bars
    for node in ("n1", "n2"):
        until(d, lambda d, n=node: (r := row(d, "#nodes-table", "data-node", n)) and "healthy" in r.text,
              f"node {node} healthy")
    assert "token=" not in d.current_url  # dropped from the address bar once the cookie is set
    n2 = row(d, "#nodes-table", "data-node", "n2")
    assert n2 is not None and len(n2.find_elements(By.CSS_SELECTOR, ".meter")) >= 2  # A and B bars
    assert "0 / 4" in n2.text and "0 / 10" in n2.text
    # bars are drawn to scale (the page's CSP would silently drop a style="" attribute)
    assert {f.size["width"] for f in n2.find_elements(By.CSS_SELECTOR, ".meter .fill")[:2]} == {0}

    # create a deployment in the form; the API's 422 shows next to the field
    click(d, "#tabs a[data-tab=deployments]")
    click(d, "#new-dep")
    fill(d, "#f-name", "UI_Web")
    code = f"import os, time\nwhile True:\n    print(os.environ.get('MARK', {MARK!r}), flush=True)\n    time.sleep(0.3)\n"
    fill(d, "#f-command", f'["{sys.executable}", "-c", {_json(code)}]')
    fill(d, "#f-capacity", "A=lots")
    click(d, "#dep-submit")
    assert "not a number" in field_error(d, "capacity_requests")  # checked in the page first
    fill(d, "#f-capacity", "A=2")
    click(d, "#dep-submit")
    until(d, lambda d: "not a valid name" in field_error(d, "name"), "the name error from the API")
    assert d.find_element(By.ID, "dep-dialog").is_displayed()
    assert c.http.get("/deployments/UI_Web").status_code == 404  # nothing created
    fill(d, "#f-name", "ui-web")
    click(d, "#dep-submit")

    # it starts: the detail page shows it running and follows its output
    until(d, lambda d: d.current_url.endswith("#deployment/ui-web"), "the deployment page")
    first = wait_for(lambda: (j := job(c, "ui-web"))["state"] == "running" and j["pid"] and j, what="ui-web running")
    assert pid_alive(first["pid"])
    until(d, lambda d: "running" in d.find_element(By.CSS_SELECTOR, "#jobs-table tbody").text, "running in the UI")
    d.find_element(By.CSS_SELECTOR, "#tabs a[data-tab=nodes]").click()
    node_row = until(d, lambda d: (r := row(d, "#nodes-table", "data-node", first["node"])) and "2 / 10" in r.text and r,
                     "A=2 used on its node")
    meter = node_row.find_element(By.CSS_SELECTOR, ".meter")
    used, track = (meter.find_element(By.CSS_SELECTOR, css).size["width"] for css in (".fill", ".track"))
    share = used / track
    assert 0.15 < share < 0.25, share
    d.back()
    until(d, lambda d: MARK in d.find_element(By.ID, "log-box").text, "the log line, followed")
    assert not d.find_elements(By.CSS_SELECTOR, "#log-box b")  # shown as text, not markup

    _screenshot(d)

    # edit: a new environment variable replaces the running copy
    click(d, "#dep-actions [data-action=edit]")
    until(d, lambda d: d.find_element(By.ID, "f-name").get_attribute("readonly") is not None, "the edit form")
    fill(d, "#f-env", "MARK=edited-in-the-ui")
    click(d, "#dep-submit")
    until(d, lambda d: "edited-in-the-ui" in d.find_element(By.ID, "log-box").text, "output of the edited copy")
    assert c.get("ui-web")["config"]["env"] == {"MARK": "edited-in-the-ui"}
    assert c.get("ui-web")["capacity_requests"] == {"A": 2}
    edited = wait_for(lambda: (j := job(c, "ui-web"))["state"] == "running" and j["pid"] != first["pid"] and j,
                      what="the edited copy running")
    wait_for(lambda: not pid_alive(first["pid"]), what="the old copy to stop")

    # stop from the UI stops the process; start runs it again
    click(d, "#dep-actions [data-action=stop]")
    wait_for(lambda: not pid_alive(edited["pid"]), what="the process to stop")
    assert c.get("ui-web")["desired_state"] == "stopped"
    until(d, lambda d: "desired: stopped" in d.find_element(By.ID, "dep-state").text, "stopped in the UI")
    click(d, "#dep-actions [data-action=start]")
    again = wait_for(lambda: (j := job(c, "ui-web"))["state"] == "running" and j["pid"] and j, what="started again")
    assert pid_alive(again["pid"])

    # the list shows it; delete asks first, then removes it and stops the process
    click(d, "#tabs a[data-tab=deployments]")
    until(d, lambda d: (r := row(d, "#deps-table", "data-dep", "ui-web")) and "running" in r.text, "the row")
    click(d, "#deps-table tr[data-dep='ui-web'] [data-action=delete]")
    click(d, "#confirm-yes")
    wait_for(lambda: c.http.get("/deployments/ui-web").status_code == 404, what="the deployment gone")
    wait_for(lambda: not pid_alive(again["pid"]), what="the process to stop after delete")
    until(d, lambda d: row(d, "#deps-table", "data-dep", "ui-web") is None, "the row gone")


def test_user_data_is_text_not_markup(two_nodes: Cluster, browser: WebDriver) -> None:
    c = two_nodes
    d = browser
    token = (c.storage / "api-token").read_text().strip()
    evil = '<img src=x onerror="document.title=\'owned\'">'
    # n1, the only node of group cpu, is full: ui-xss waits (its command never runs)
    fill = c.http.post("/deployments", json={"name": "ui-fill", "node_group": "cpu", "capacity_requests": {"A": 10},
                                             "config": {"command": ["sleep", "600"]}})
    assert fill.status_code == 201, fill.text
    resp = c.http.post("/deployments", json={"name": "ui-xss", "node_group": "cpu", "capacity_requests": {"A": 1},
                                             "config": {"command": evil, "env": {"X": evil}}})
    assert resp.status_code == 201, resp.text
    try:
        d.get(f"{c.url}/ui?token={token}#deployment/ui-xss")
        until(d, lambda d: evil in d.find_element(By.ID, "dep-spec").text, "the command shown as text")
        assert "'cpu'" in d.find_element(By.ID, "dep-reason").text  # why it is pending
        d.get(f"{c.url}/ui#deployments")
        until(d, lambda d: row(d, "#deps-table", "data-dep", "ui-xss") is not None, "the row")
        assert not d.find_elements(By.CSS_SELECTOR, "main img") and d.title != "owned"
    finally:
        c.http.delete("/deployments/ui-xss")
        c.http.delete("/deployments/ui-fill")


def _json(text: str) -> str:
    import json

    return json.dumps(text)


def _screenshot(d: WebDriver) -> None:
    """Set SYMPHONY_UI_SCREENSHOTS=DIR to keep pictures of the pages (for people, not asserts)."""
    out = os.environ.get("SYMPHONY_UI_SCREENSHOTS")
    if not out:
        return
    Path(out).mkdir(parents=True, exist_ok=True)
    d.save_screenshot(str(Path(out) / "deployment.png"))
    d.get(d.current_url.split("#")[0] + "#nodes")
    until(d, lambda d: row(d, "#nodes-table", "data-node", "n1") is not None, "nodes")
    d.save_screenshot(str(Path(out) / "nodes.png"))
    d.get(d.current_url.split("#")[0] + "#deployments")
    until(d, lambda d: row(d, "#deps-table", "data-dep", "ui-web") is not None, "deployments")
    d.save_screenshot(str(Path(out) / "deployments.png"))
    d.get(d.current_url.split("#")[0] + "#deployment/ui-web")
    until(d, lambda d: MARK in d.find_element(By.ID, "log-box").text, "back on the deployment page")


EXPERIMENT = """
apiVersion: symphony/v1
kind: Experiment
metadata: {name: ui-exp}
spec:
  processes:
    - name: server
      command: [PYTHON, -c, "import time\\nwhile True:\\n    print('serving', flush=True)\\n    time.sleep(0.3)"]
      binds: [rpc]
      capacity_requests: {A: 1}
    - name: client
      command: [PYTHON, -c, "import os, time\\nwhile True:\\n    print('client of', os.environ['SYMPH_RPC_ADDR'], flush=True)\\n    time.sleep(0.3)"]
      connects: [rpc]
"""


def test_experiments_tab_shows_processes_addresses_and_logs(two_nodes: Cluster, browser: WebDriver) -> None:
    from symphony.clusters.conductor_wire import experiment_to_wire
    from symphony.manifests import load_text

    c = two_nodes
    d = browser
    exp = load_text(EXPERIMENT.replace("PYTHON", sys.executable)).experiments[0]
    resp = c.http.post("/apply", json={"experiments": [experiment_to_wire(exp)]})
    assert resp.status_code == 200, resp.text
    try:
        address = c.http.get("/experiments/ui-exp").json()["addresses"]["rpc"]
        d.get(f"{c.url}/ui?token={(c.storage / 'api-token').read_text().strip()}#experiments")
        for key in ("server", "client"):
            until(d, lambda d, k=key: (r := d.find_elements(By.CSS_SELECTOR, f"#exps-table tr[data-process='{k}']"))
                  and "running" in r[0].text, f"{key} running in the Experiments tab")
        server = d.find_element(By.CSS_SELECTOR, "#exps-table tr[data-process='server']").text
        assert f"rpc {address['host']}:{address['port']}" in server
        d.find_element(By.CSS_SELECTOR, "#exps-table tr[data-process='client'] a").click()
        until(d, lambda d: f"client of {address['host']}:{address['port']}" in d.find_element(By.ID, "log-box").text,
              "the client's output on its page")
        assert "experiment ui-exp" in d.find_element(By.ID, "dep-actions").text
        assert not d.find_elements(By.CSS_SELECTOR, "#dep-actions button")  # changed with symphony apply
        d.get(f"{c.url}/ui#deployments")
        until(d, lambda d: "ui-exp" not in d.find_element(By.ID, "deps-table").text
              and "deployments" in d.find_element(By.ID, "summary").text, "the deployments list")
    finally:
        c.http.delete("/experiments/ui-exp")
