"""The monitoring shipped in monitoring/ (docs/monitoring.md), checked with Prometheus' own promtool and a real etcd.

- the alert rules and the example scrape configuration pass ``promtool check``; the rule unit tests in
  monitoring/tests/ pass ``promtool test rules``, and they show every alert firing (labels and annotations
  asserted) and silent at some evaluation;
- every alert has ``for``, a severity and the three annotations, its runbook anchor exists in
  docs/operations.md;
- every dashboard query parses: the template variables are substituted and each query is handed to
  ``promtool check rules`` as a recording rule;
- every metric the rules and the dashboard use exists: the agent's and the mirror's are documented
  (docs/reference.md "Metrics", plus those the issue-19 contract adds) and exported by their registries,
  etcd's own are in :data:`ETCD_METRICS`, each found on a real etcd's /metrics (one etcd for the module).

promtool comes from ``make promtool`` (Debian's prometheus package, unpacked into .cache) or ``PROMTOOL``; without
it these tests fail, saying so: a skip would pass unseen.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"
ALERTS = MONITORING / "alerts.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
RULE_TESTS = sorted((MONITORING / "tests").glob("*.yml"))

# etcd's own metrics the rules and the dashboard use (histograms by their _bucket series).
ETCD_METRICS = {
    "etcd_server_has_leader",
    "etcd_server_leader_changes_seen_total",
    "etcd_server_proposals_committed_total",
    "etcd_server_proposals_applied_total",
    "etcd_server_proposals_pending",
    "etcd_server_proposals_failed_total",
    "etcd_server_slow_apply_total",
    "etcd_server_quota_backend_bytes",
    "etcd_mvcc_db_total_size_in_bytes",
    "etcd_mvcc_db_total_size_in_use_in_bytes",
    "etcd_disk_wal_fsync_duration_seconds_bucket",
    "etcd_disk_backend_commit_duration_seconds_bucket",
}

# Concrete values for Grafana's template variables, so that promtool can parse each query.
VARIABLES = {"cluster": "etcd-prod", "__rate_interval": "1m", "__interval": "30s", "__range": "6h",
             "__range_s": "21600", "__interval_ms": "30000"}


def promtool() -> str:
    """The promtool binary; the calling test fails, in one line naming the remedy, when there is none."""
    path = os.environ.get("PROMTOOL") or str(REPO / ".cache" / "prometheus" / "usr" / "bin" / "promtool")
    if not os.access(path, os.X_OK):
        pytest.fail(f"no promtool at {path}: run `make promtool` (Debian's prometheus package into .cache) "
                    "or set PROMTOOL", pytrace=False)
    return path


def run_promtool(*args: str) -> subprocess.CompletedProcess:
    """``promtool ARGS`` from the repository's root (text output, 60 s at most)."""
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=60, cwd=REPO)


def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
            if "alert" in rule]


def rule_evaluations() -> list[dict]:
    """Every ``alert_rule_test`` entry of the unit tests in monitoring/tests/."""
    return [evaluation for path in RULE_TESTS for test in yaml.safe_load(path.read_text())["tests"]
            for evaluation in test.get("alert_rule_test", [])]


def dashboard_panels(panels: list[dict]) -> list[dict]:
    """The panels, those nested in collapsed rows too."""
    return [p for panel in panels for p in [panel, *dashboard_panels(panel.get("panels", []))]]


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard_panels(dashboard["panels"]) for target in panel.get("targets", [])]


def substituted(expr: str) -> str:
    """``expr`` with Grafana's ``$name``, ``${name}`` and ``[[name]]`` variables replaced by :data:`VARIABLES`."""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)|\[\[(\w+)\]\]", lambda m: VARIABLES[next(g for g in m.groups() if g)], expr)


def metric_names(expr: str) -> set[str]:
    """The etcd metric names in a PromQL expression (every metric the appliance uses starts with ``etcd_``;
    no label or function name does); quoted label values are left out first."""
    return set(re.findall(r"\betcd_[A-Za-z0-9_:]*", re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)))


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_alert_rules_pass_promtool_check():
    done = run_promtool("check", "rules", str(ALERTS.relative_to(REPO)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in done.stdout


def test_the_example_scrape_configuration_passes_promtool_check():
    done = run_promtool("check", "config", str((MONITORING / "prometheus.yml").relative_to(REPO)))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_rule_unit_tests_pass():
    assert RULE_TESTS
    done = run_promtool("test", "rules", *(str(path.relative_to(REPO)) for path in RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(RULE_TESTS), done.stdout


def test_the_rule_unit_tests_show_every_alert_firing_and_silent():
    evaluations = rule_evaluations()
    firing = {e["alertname"] for e in evaluations if e.get("exp_alerts")}
    silent = {e["alertname"] for e in evaluations if not e.get("exp_alerts")}
    names = {rule["alert"] for rule in alert_rules()}
    assert firing == names, f"never shown firing: {names - firing}; unknown: {firing - names}"
    assert silent >= names, f"never shown silent: {names - silent}"
    for evaluation in evaluations:
        for expected in evaluation.get("exp_alerts") or []:
            assert expected["exp_labels"]["severity"] in ("page", "ticket"), evaluation
            assert set(expected["exp_annotations"]) == {"summary", "description", "runbook_url"}, evaluation


def test_every_alert_has_for_a_severity_annotations_and_an_existing_runbook_section():
    headings = re.findall(r"^#+ (.+)$", (REPO / "docs" / "operations.md").read_text(), re.M)
    anchors = {github_anchor(heading) for heading in headings}
    for rule in alert_rules():
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), rule["alert"]
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, rule["alert"]
        assert "$labels" in annotations["summary"] + annotations["description"], rule["alert"]
        page, _, anchor = annotations["runbook_url"].partition("#")
        assert page == "docs/operations.md" and anchor in anchors, (rule["alert"], annotations["runbook_url"])


def test_every_dashboard_query_parses(tmp_path):
    queries = [substituted(expr) for expr in dashboard_queries()]
    assert queries and not [q for q in queries if "$" in q]
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:query_{n}", "expr": query}
                                                        for n, query in enumerate(queries)]}]}
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    done = run_promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(queries)} rules found" in done.stdout


def test_a_malformed_query_fails_the_parse_check(tmp_path):
    # The check above could pass by checking nothing: one broken query must fail it.
    path = tmp_path / "broken.yml"
    unclosed = substituted('rate(etcd_server_has_leader{cluster="$cluster"}[5m]')
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [{"record": "q", "expr": unclosed}]}]}))
    assert run_promtool("check", "rules", str(path)).returncode != 0


def test_the_dashboard_selects_a_prometheus_data_source_and_a_cluster():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["cluster"]["type"] == "query"
    assert "label_values(" in variables["cluster"]["definition"]
    for panel in dashboard_panels(dashboard["panels"]):
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert 'cluster="$cluster"' in target["expr"], (panel["title"], target["expr"])
    ids = [panel["id"] for panel in dashboard_panels(dashboard["panels"])]
    assert len(ids) == len(set(ids))


def used_metrics() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [rule["expr"] for rule in alert_rules()] + dashboard_queries()
    exprs += [v.get("definition", "") for v in dashboard["templating"]["list"]]
    return set().union(*(metric_names(expr) for expr in exprs))


def test_every_appliance_and_mirror_metric_used_is_documented():
    reference = (REPO / "docs" / "reference.md").read_text()
    start = reference.index("\n## Metrics\n")
    metrics_section = reference[start:reference.index("\n## ", start + 1)]
    documented = set(re.findall(r"`(etcd_(?:appliance|mirror)_\w+)`", metrics_section))
    ours = {name for name in used_metrics() if name.startswith(("etcd_appliance_", "etcd_mirror_"))}
    assert ours and ours <= documented, f"not documented: {sorted(ours - documented)}"


def test_every_appliance_and_mirror_metric_used_is_exported_by_the_code():
    from prometheus_client import generate_latest

    from appliance.adapters.metrics import AgentMetrics
    from appliance.replication.metrics import MirrorMetrics

    exported = exposed_names(AgentMetrics().exposition().decode())
    exported |= exposed_names(generate_latest(MirrorMetrics(None).registry).decode())
    ours = {name for name in used_metrics() if name.startswith(("etcd_appliance_", "etcd_mirror_"))}
    assert ours <= exported, f"not exported: {sorted(ours - exported)}"


def exposed_names(exposition: str) -> set[str]:
    """The sample names a Prometheus text exposition declares: each ``# TYPE`` line's name, and a histogram's
    or summary's ``_bucket``, ``_sum`` and ``_count`` series."""
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", exposition, re.M):
        names.add(name)
        if kind in ("histogram", "summary"):
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


def test_every_etcd_metric_used_is_on_a_real_etcd_s_metrics_endpoint(etcd):
    client, url = etcd
    client.put("/monitoring-test", "1")  # a write, so that etcd has observed a WAL fsync and a commit
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as answer:
        exposed = exposed_names(answer.read().decode())
    etcd_own = {name for name in used_metrics() if not name.startswith(("etcd_appliance_", "etcd_mirror_"))}
    assert etcd_own == ETCD_METRICS, f"used but not listed: {etcd_own - ETCD_METRICS}; " \
                                     f"listed but unused: {ETCD_METRICS - etcd_own}"
    assert ETCD_METRICS <= exposed, f"not on etcd's /metrics: {sorted(ETCD_METRICS - exposed)}"
