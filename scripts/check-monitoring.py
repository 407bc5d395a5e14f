#!/usr/bin/env python3
"""Structural checks of the chart's metrics objects (no schema of the
Prometheus Operator's kinds is at hand offline), for scripts/check-chart.

  check-monitoring.py RENDERED present|absent DOCS

- Services that select pods: the selector matches a rendered workload's pod
  labels, every targetPort names one of its container ports.
- present: two ServiceMonitors and two PodMonitors (controller, node) and one
  PrometheusRule. A monitor's selector matches a rendered Service (or pod
  template) in its namespace, every endpoint port is a port name there, paths
  and intervals are well formed. Every rule has alert, expr, labels.severity
  and annotations.summary, balanced brackets, and every lvsnap_* metric it
  names is a family documented in DOCS (docs/metrics.md).
- absent: none of those kinds is rendered.
"""
import re
import sys

import yaml

MONITORING = "monitoring.coreos.com/v1"
KINDS = ("ServiceMonitor", "PodMonitor", "PrometheusRule")
ALERTS = {
    "LvsnapSnapshotCowFilling", "LvsnapSnapshotInvalid", "LvsnapThinPoolDataFull",
    "LvsnapThinPoolMetadataFull", "LvsnapQuotaNearLimit", "LvsnapOrphanLVs", "LvsnapRpcErrors",
}
DURATION = re.compile(r"^[0-9]+(ms|s|m|h)$")
MONITOR_ENDPOINT_KEYS = {"port", "path", "interval", "scheme", "scrapeTimeout", "honorLabels"}


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def name_of(o):
    m = o.get("metadata") or {}
    return "%s %s/%s" % (o.get("kind"), m.get("namespace", ""), m.get("name"))


def workloads(objs):
    """(namespace, pod labels, container port names) of each workload."""
    out = []
    for o in objs:
        if o.get("kind") not in ("Deployment", "DaemonSet", "StatefulSet"):
            continue
        tpl = (o.get("spec") or {}).get("template") or {}
        labels = (tpl.get("metadata") or {}).get("labels") or {}
        ports = set()
        for c in (tpl.get("spec") or {}).get("containers") or []:
            for p in c.get("ports") or []:
                ports.add(p.get("name"))
        out.append(((o.get("metadata") or {}).get("namespace"), labels, ports, name_of(o)))
    return out


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_services(objs, problems):
    pods = workloads(objs)
    services = [o for o in objs if o.get("kind") == "Service"]
    for s in services:
        spec = s.get("spec") or {}
        sel = spec.get("selector") or {}
        if not sel:
            continue
        ns = (s.get("metadata") or {}).get("namespace")
        matched = [w for w in pods if w[0] == ns and selects(sel, w[1])]
        if not matched:
            problems.append("%s: selector %s matches no rendered pods" % (name_of(s), sel))
            continue
        for p in spec.get("ports") or []:
            tp = p.get("targetPort")
            if isinstance(tp, str) and not all(tp in w[2] for w in matched):
                problems.append("%s: targetPort %r is no container port of %s" % (
                    name_of(s), tp, ", ".join(w[3] for w in matched)))
    return services, pods


def check_monitor(o, services, pods, problems):
    n = name_of(o)
    spec = o.get("spec") or {}
    ns = (o.get("metadata") or {}).get("namespace")
    sel = ((spec.get("selector") or {}).get("matchLabels")) or {}
    names = (spec.get("namespaceSelector") or {}).get("matchNames") or [ns]
    if o["kind"] == "ServiceMonitor":
        endpoints = spec.get("endpoints") or []
        targets = [set(p.get("name") for p in (s.get("spec") or {}).get("ports") or [])
                   for s in services
                   if (s.get("metadata") or {}).get("namespace") in names
                   and selects(sel, (s.get("metadata") or {}).get("labels") or {})]
        what = "Service"
    else:
        endpoints = spec.get("podMetricsEndpoints") or []
        targets = [w[2] for w in pods if w[0] in names and selects(sel, w[1])]
        what = "pod"
    if not targets:
        problems.append("%s: selector %s matches no rendered %s" % (n, sel, what))
    if not endpoints:
        problems.append("%s: no endpoints" % n)
    for e in endpoints:
        for extra in sorted(set(e) - MONITOR_ENDPOINT_KEYS):
            problems.append("%s: unknown endpoint field %r" % (n, extra))
        if not all(e.get("port") in t for t in targets):
            problems.append("%s: port %r is not a port name of every selected %s" % (n, e.get("port"), what))
        if not str(e.get("path", "/metrics")).startswith("/"):
            problems.append("%s: path %r" % (n, e.get("path")))
        if "interval" in e and not DURATION.match(str(e["interval"])):
            problems.append("%s: interval %r" % (n, e["interval"]))


def balanced(expr):
    pairs, stack = {")": "(", "]": "[", "}": "{"}, []
    for ch in re.sub(r'"[^"]*"', '""', expr):
        if ch in "([{":
            stack.append(ch)
        elif ch in pairs:
            if not stack or stack.pop() != pairs[ch]:
                return False
    return not stack


def documented(docs_path):
    with open(docs_path) as f:
        text = f.read()
    return set(re.findall(r"`(lvsnap_[a-z_]+)", text))


def check_rule(o, families, problems):
    n = name_of(o)
    groups = (o.get("spec") or {}).get("groups")
    if not isinstance(groups, list) or not groups:
        problems.append("%s: spec.groups must be a non-empty list" % n)
        return
    alerts = set()
    for g in groups:
        if not g.get("name"):
            problems.append("%s: a group has no name" % n)
        for r in g.get("rules") or []:
            a = r.get("alert")
            alerts.add(a)
            where = "%s: %s" % (n, a)
            if not isinstance(a, str) or not re.match(r"^[A-Z][A-Za-z0-9]*$", a):
                problems.append("%s: alert name must be CamelCase" % where)
            expr = r.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                problems.append("%s: no expr" % where)
                continue
            if not balanced(expr):
                problems.append("%s: unbalanced brackets in %r" % (where, expr))
            for metric in re.findall(r"\blvsnap_[a-z_]+", expr):
                base = re.sub(r"_(bucket|count|sum)$", "", metric)
                if metric not in families and base not in families:
                    problems.append("%s: %s is not a documented metric family" % (where, metric))
            if "for" in r and not DURATION.match(str(r["for"])):
                problems.append("%s: for %r" % (where, r["for"]))
            if (r.get("labels") or {}).get("severity") not in ("critical", "warning", "info"):
                problems.append("%s: labels.severity must be critical, warning or info" % where)
            if not (r.get("annotations") or {}).get("summary"):
                problems.append("%s: no annotations.summary" % where)
    for missing in sorted(ALERTS - alerts):
        problems.append("%s: alert %s is missing" % (n, missing))


def main(argv):
    if len(argv) != 4 or argv[2] not in ("present", "absent"):
        print(__doc__)
        return 2
    objs = load(argv[1])
    problems = []
    services, pods = check_services(objs, problems)
    mon = [o for o in objs if o.get("apiVersion") == MONITORING and o.get("kind") in KINDS]
    counts = {k: sum(1 for o in mon if o["kind"] == k) for k in KINDS}
    if argv[2] == "absent":
        if mon:
            problems.append("rendered with the monitoring objects disabled: %s" % counts)
    else:
        want = {"ServiceMonitor": 2, "PodMonitor": 2, "PrometheusRule": 1}
        if counts != want:
            problems.append("want %s, rendered %s" % (want, counts))
        families = documented(argv[3])
        if not families:
            problems.append("%s documents no lvsnap_* family" % argv[3])
        for o in mon:
            if o["kind"] == "PrometheusRule":
                check_rule(o, families, problems)
            else:
                check_monitor(o, services, pods, problems)
    print("  Services checked: %d; %s" % (len(services), ", ".join("%s %d" % kv for kv in counts.items())))
    for p in problems:
        print("  FAIL %s" % p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
