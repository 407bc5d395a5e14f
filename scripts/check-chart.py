#!/usr/bin/env python3
"""Offline checks of the rendered lvsnap chart, called by scripts/check-chart.

Subcommands (each exits non-zero with one line per problem):
  split RENDERED OUTDIR      write the built-in kinds to OUTDIR/builtin.yaml (for
                             kubernetes-validate) and print the kinds with counts
  crd-kinds RENDERED CRDDIR  validate the objects of CRD-defined kinds: lvsnap.io
                             kinds against the openAPIV3Schema of our CRDs (OpenAPI
                             v3 subset converted to JSON Schema), VolumeSnapshotClass
                             and VolumeGroupSnapshotClass by a hand check of
                             their fields
  policy RENDERED            cross-object rules: RBAC without wildcards and with
                             every binding's role and subject present, timeouts,
                             pinned sidecar images, the node's host access, names
                             that must agree
  flags RENDERED LVSNAP_BIN  every --flag passed to an lvsnap container appears in
                             `lvsnap [<subcommand>] --help`
  rbac RENDERED REQUIRED     the ClusterRoles and Roles bound to each ServiceAccount
                             grant every (apiGroup, resource, verb) that REQUIRED
                             (deploy/helm/rbac-required.yaml) lists for the
                             containers running as it, and nothing more; the
                             sidecars run the tags their rules were read from
  rbac-mutants RENDERED REQUIRED
                             the rbac check run on broken copies of RENDERED
                             (a verb taken away, a rule added, an older sidecar,
                             a Role missing): each must fail with its problem
"""
import collections
import copy
import glob
import os
import re
import subprocess
import sys

import yaml
from jsonschema import Draft7Validator

# Kinds whose schema kubernetes-validate ships (the built-in API).
CRD_DEFINED = {
    ("snapshot.storage.k8s.io/v1", "VolumeSnapshotClass"),
    ("groupsnapshot.storage.k8s.io/v1", "VolumeGroupSnapshotClass"),
} | {("monitoring.coreos.com/v1", k) for k in ("ServiceMonitor", "PodMonitor", "PrometheusRule")}  # Prometheus Operator's
LVSNAP_GROUP = "lvsnap.io"
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# The sidecars and the major version each must stay on.
SIDECARS = {
    "registry.k8s.io/sig-storage/csi-provisioner": "v6.",
    "registry.k8s.io/sig-storage/csi-snapshotter": "v8.",
    "registry.k8s.io/sig-storage/csi-resizer": "v2.",
    "registry.k8s.io/sig-storage/livenessprobe": "v2.",
    "registry.k8s.io/sig-storage/csi-node-driver-registrar": "v2.",
}
LVSNAP_SUBCOMMANDS = {"controller", "node", "all-in-one", "crd"}


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def name_of(obj):
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return "%s %s%s" % (obj.get("kind"), (ns + "/") if ns else "", meta.get("name"))


def is_crd_defined(obj):
    api = obj.get("apiVersion", "")
    return (api, obj.get("kind")) in CRD_DEFINED or api.split("/")[0] == LVSNAP_GROUP


def cmd_split(rendered, outdir):
    objs = load(rendered)
    builtin = [o for o in objs if not is_crd_defined(o)]
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "builtin.yaml"), "w") as f:
        yaml.safe_dump_all(builtin, f, sort_keys=False)
    counts = collections.Counter(o["kind"] for o in objs)
    for kind, n in sorted(counts.items()):
        print("  %-28s %d" % (kind, n))
    print("  %-28s %d (%d built-in, %d CRD-defined)" % (
        "total", len(objs), len(builtin), len(objs) - len(builtin)))
    return 0


# ---------------------------------------------------------------- CRD kinds

def openapi_to_jsonschema(s, path="$"):
    """Converts a CRD's structural OpenAPI v3 schema to JSON Schema (draft 7).

    Unknown fields are rejected, as `kubectl apply --validate=strict` does,
    unless x-kubernetes-preserve-unknown-fields says otherwise. CEL rules
    (x-kubernetes-validations) cannot be evaluated here and are reported."""
    if not isinstance(s, dict):
        return s
    out = {}
    for key in ("type", "required", "enum", "minimum", "maximum", "minLength", "maxLength",
                "pattern", "minItems", "maxItems", "uniqueItems", "minProperties",
                "maxProperties", "multipleOf", "format"):
        if key in s:
            out[key] = copy.deepcopy(s[key])
    # OpenAPI 3.0 exclusive bounds are booleans on minimum/maximum.
    for ex, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if s.get(ex) is True and bound in out:
            out[ex] = out.pop(bound)
    if "properties" in s:
        out["properties"] = {k: openapi_to_jsonschema(v, "%s.%s" % (path, k))
                             for k, v in s["properties"].items()}
    if "items" in s:
        out["items"] = openapi_to_jsonschema(s["items"], path + "[]")
    if "additionalProperties" in s:
        ap = s["additionalProperties"]
        out["additionalProperties"] = ap if isinstance(ap, bool) else openapi_to_jsonschema(ap, path + ".*")
    for key in ("allOf", "anyOf", "oneOf"):
        if key in s:
            out[key] = [openapi_to_jsonschema(x, path) for x in s[key]]
    if "not" in s:
        out["not"] = openapi_to_jsonschema(s["not"], path)
    if s.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = out.get("anyOf", []) + [{"type": "integer"}, {"type": "string"}]
    preserve = s.get("x-kubernetes-preserve-unknown-fields") or s.get("x-kubernetes-embedded-resource")
    if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    if s.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = out["enum"] + [None]
    if s.get("x-kubernetes-validations"):
        openapi_to_jsonschema.cel_skipped.append(path)
    return out


openapi_to_jsonschema.cel_skipped = []


def load_crds(crd_dir):
    crds = {}
    for path in sorted(glob.glob(os.path.join(crd_dir, "*.yaml")) + glob.glob(os.path.join(crd_dir, "*.yml"))):
        for doc in load(path):
            if doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for v in spec.get("versions", []):
                if not v.get("served", False):
                    continue
                key = ("%s/%s" % (spec["group"], v["name"]), spec["names"]["kind"])
                crds[key] = (spec.get("scope", "Namespaced"), (v.get("schema") or {}).get("openAPIV3Schema"), path)
    return crds


def check_metadata(obj, scope, problems):
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        problems.append("%s: no metadata" % name_of(obj))
        return
    name = meta.get("name", "")
    if not isinstance(name, str) or len(name) > 253 or not DNS_SUBDOMAIN.match(name):
        problems.append("%s: metadata.name %r is not a DNS-1123 subdomain" % (name_of(obj), name))
    if scope == "Cluster" and "namespace" in meta:
        problems.append("%s: cluster-scoped object has metadata.namespace" % name_of(obj))
    for field in ("labels", "annotations"):
        m = meta.get(field) or {}
        if not isinstance(m, dict) or not all(isinstance(v, str) for v in m.values()):
            problems.append("%s: metadata.%s must map strings to strings" % (name_of(obj), field))


def check_volumesnapshotclass(obj, problems):
    """snapshot.storage.k8s.io/v1 VolumeSnapshotClass: driver and deletionPolicy
    are required; parameters is a string map; nothing else at the top level."""
    n = name_of(obj)
    check_metadata(obj, "Cluster", problems)
    allowed = {"apiVersion", "kind", "metadata", "driver", "deletionPolicy", "parameters"}
    for extra in sorted(set(obj) - allowed):
        problems.append("%s: unknown field %r" % (n, extra))
    driver = obj.get("driver")
    if not isinstance(driver, str) or not driver or len(driver) > 63 or not DNS_SUBDOMAIN.match(driver):
        problems.append("%s: driver %r must be a CSI driver name (DNS subdomain, <= 63 chars)" % (n, driver))
    if obj.get("deletionPolicy") not in ("Delete", "Retain"):
        problems.append("%s: deletionPolicy %r must be Delete or Retain" % (n, obj.get("deletionPolicy")))
    params = obj.get("parameters")
    if params is not None and (not isinstance(params, dict)
                               or not all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())):
        problems.append("%s: parameters must map strings to strings" % n)


def cmd_crd_kinds(rendered, crd_dir):
    objs = [o for o in load(rendered) if is_crd_defined(o)]
    crds = load_crds(crd_dir) if os.path.isdir(crd_dir) else {}
    problems, checked = [], collections.Counter()
    for obj in objs:
        key = (obj.get("apiVersion"), obj.get("kind"))
        if key in (("snapshot.storage.k8s.io/v1", "VolumeSnapshotClass"),
                   ("groupsnapshot.storage.k8s.io/v1", "VolumeGroupSnapshotClass")):
            # The two classes have the same shape.
            check_volumesnapshotclass(obj, problems)
            checked["%s (hand check)" % obj["kind"]] += 1
            continue
        if key[0] == "monitoring.coreos.com/v1":  # structure: scripts/check-monitoring.py
            check_metadata(obj, "Namespaced", problems); checked[obj["kind"] + " (metadata)"] += 1; continue
        if key not in crds:
            if not crds:
                print("  %s: no CRDs in %s yet; checked metadata only" % (name_of(obj), crd_dir))
                check_metadata(obj, "Cluster", problems)
                checked["%s (metadata only, no CRD)" % obj["kind"]] += 1
            else:
                problems.append("%s: no served CRD version %s of kind %s in %s" % (name_of(obj), key[0], key[1], crd_dir))
            continue
        scope, schema, path = crds[key]
        check_metadata(obj, scope, problems)
        if schema is None:
            problems.append("%s: the CRD in %s has no openAPIV3Schema" % (name_of(obj), path))
            continue
        js = openapi_to_jsonschema(schema)
        js.setdefault("properties", {})
        js["properties"]["apiVersion"] = {"const": key[0]}
        js["properties"]["kind"] = {"const": key[1]}
        js["properties"]["metadata"] = {"type": "object"}
        js["additionalProperties"] = False
        Draft7Validator.check_schema(js)
        for err in sorted(Draft7Validator(js).iter_errors(obj), key=lambda e: list(e.path)):
            loc = ".".join(str(p) for p in err.path) or "(root)"
            problems.append("%s: %s: %s (schema of %s)" % (name_of(obj), loc, err.message, os.path.basename(path)))
        checked["%s (CRD schema)" % obj["kind"]] += 1
    for what, n in sorted(checked.items()):
        print("  %-44s %d" % (what, n))
    if not objs:
        print("  no CRD-defined objects rendered")
    if openapi_to_jsonschema.cel_skipped:
        print("  note: CEL rules not evaluated at: %s" % ", ".join(sorted(set(openapi_to_jsonschema.cel_skipped))))
    for p in problems:
        print("  FAIL %s" % p)
    return 1 if problems else 0


# ---------------------------------------------------------------- policy

def containers(obj):
    spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    return spec, (spec.get("initContainers") or []) + (spec.get("containers") or [])


def arg_value(args, flag):
    for a in args or []:
        if a == flag:
            return True
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def seconds(d):
    m = re.fullmatch(r"(\d+)(s|m|h)", d or "")
    if not m:
        return None
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]


def cmd_policy(rendered):
    objs = load(rendered)
    problems = []
    by_kind = collections.defaultdict(list)
    for o in objs:
        by_kind[o["kind"]].append(o)
    names = {(o["kind"], (o["metadata"].get("namespace") or ""), o["metadata"]["name"]) for o in objs}

    # RBAC: no wildcards; bindings point at rendered roles and ServiceAccounts.
    for o in by_kind["ClusterRole"] + by_kind["Role"]:
        for i, rule in enumerate(o.get("rules") or []):
            for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                if any("*" in str(x) for x in rule.get(field) or []):
                    problems.append("%s: rule %d has a wildcard in %s" % (name_of(o), i, field))
            if not rule.get("verbs"):
                problems.append("%s: rule %d has no verbs" % (name_of(o), i))
    for o in by_kind["ClusterRoleBinding"] + by_kind["RoleBinding"]:
        ref = o["roleRef"]
        ns = "" if ref["kind"] == "ClusterRole" else o["metadata"].get("namespace", "")
        if (ref["kind"], ns, ref["name"]) not in names:
            problems.append("%s: roleRef %s %s is not rendered" % (name_of(o), ref["kind"], ref["name"]))
        for sub in o.get("subjects") or []:
            if sub["kind"] == "ServiceAccount" and ("ServiceAccount", sub.get("namespace", ""), sub["name"]) not in names:
                problems.append("%s: subject ServiceAccount %s/%s is not rendered" % (name_of(o), sub.get("namespace"), sub["name"]))
    for o in by_kind["Deployment"] + by_kind["DaemonSet"]:
        spec, _ = containers(o)
        sa = spec.get("serviceAccountName")
        if ("ServiceAccount", o["metadata"].get("namespace", ""), sa) not in names:
            problems.append("%s: serviceAccountName %r is not rendered" % (name_of(o), sa))

    # Images: sidecars from registry.k8s.io/sig-storage on their major; nothing floating.
    for o in by_kind["Deployment"] + by_kind["DaemonSet"]:
        for c in containers(o)[1]:
            image = c["image"]
            repo, _, tag = image.rpartition(":") if "@" not in image else (image.split("@")[0], "", image.split("@")[1])
            if not tag or tag == "latest":
                problems.append("%s: container %s image %s is not pinned" % (name_of(o), c["name"], image))
            if repo in SIDECARS and not (tag.startswith(SIDECARS[repo]) or tag.startswith("sha256:")):
                problems.append("%s: container %s: %s must stay on %sx" % (name_of(o), c["name"], image, SIDECARS[repo]))

    driver = [o["metadata"]["name"] for o in by_kind["CSIDriver"]]
    if len(driver) != 1:
        problems.append("exactly one CSIDriver expected, found %d" % len(driver))
    driver = driver[0] if driver else None
    for o in by_kind["CSIDriver"]:
        want = {"attachRequired": False, "podInfoOnMount": False, "storageCapacity": True,
                "volumeLifecycleModes": ["Persistent"], "fsGroupPolicy": "File"}
        for k, v in want.items():
            if o["spec"].get(k) != v:
                problems.append("%s: spec.%s is %r, want %r" % (name_of(o), k, o["spec"].get(k), v))
    for o in by_kind["StorageClass"]:
        if o.get("provisioner") != driver:
            problems.append("%s: provisioner %r is not the CSIDriver %r" % (name_of(o), o.get("provisioner"), driver))
        if o.get("volumeBindingMode") != "WaitForFirstConsumer" or o.get("allowVolumeExpansion") is not True:
            problems.append("%s: needs volumeBindingMode WaitForFirstConsumer and allowVolumeExpansion true" % name_of(o))
        # Parameters: `lvsnap check-classes` (stage "classes") applies the
        # sidecars' and the driver's own parsers.
    for o in by_kind["VolumeSnapshotClass"] + by_kind["VolumeGroupSnapshotClass"]:
        if o.get("driver") != driver:
            problems.append("%s: driver %r is not the CSIDriver %r" % (name_of(o), o.get("driver"), driver))

    # The controller Deployment: timeouts, provisioner capacity, leader election.
    for o in by_kind["Deployment"]:
        _, cs = containers(o)
        by_name = {c["name"]: c for c in cs}
        ctl = by_name.get("lvsnap")
        if not ctl or "controller" not in ctl.get("args", []):
            problems.append("%s: no lvsnap controller container" % name_of(o))
            continue
        create = seconds(arg_value(ctl["args"], "--create-timeout"))
        for side in ("csi-provisioner", "csi-snapshotter", "csi-resizer"):
            c = by_name.get(side)
            if not c:
                problems.append("%s: no %s container" % (name_of(o), side))
                continue
            t = seconds(arg_value(c["args"], "--timeout"))
            if create is None or t is None or 2 * create > t:
                problems.append("%s: %s --timeout=%ss must be at least twice lvsnap's --create-timeout=%ss"
                                % (name_of(o), side, t, create))
            if arg_value(c["args"], "--leader-election") is not True:
                problems.append("%s: %s runs without --leader-election" % (name_of(o), side))
        prov = by_name.get("csi-provisioner", {})
        for flag in ("--extra-create-metadata", "--enable-capacity"):
            if arg_value(prov.get("args"), flag) is not True:
                problems.append("%s: csi-provisioner lacks %s" % (name_of(o), flag))
        if arg_value(prov.get("args"), "--feature-gates") != "Topology=true":
            problems.append("%s: csi-provisioner lacks --feature-gates=Topology=true" % name_of(o))
        if arg_value(prov.get("args"), "--capacity-ownerref-level") != "2":
            problems.append("%s: csi-provisioner needs --capacity-ownerref-level=2 in a Deployment" % name_of(o))
        env = {e["name"] for e in prov.get("env") or []}
        if not {"POD_NAME", "NAMESPACE"} <= env:
            problems.append("%s: csi-provisioner --enable-capacity needs POD_NAME and NAMESPACE env" % name_of(o))
        if arg_value(by_name.get("csi-snapshotter", {}).get("args"), "--extra-create-metadata") is not True:
            problems.append("%s: csi-snapshotter lacks --extra-create-metadata" % name_of(o))

    # The node DaemonSet: host access it needs, and names that must agree.
    for o in by_kind["DaemonSet"]:
        spec, cs = containers(o)
        by_name = {c["name"]: c for c in cs}
        node = by_name.get("lvsnap")
        if not node or "node" not in node.get("args", []):
            problems.append("%s: no lvsnap node container" % name_of(o))
            continue
        if not (node.get("securityContext") or {}).get("privileged"):
            problems.append("%s: lvsnap node must be privileged" % name_of(o))
        prefix = arg_value(node["args"], "--lvm-command-prefix")
        uses_nsenter = isinstance(prefix, str) and "nsenter" in prefix
        if bool(spec.get("hostPID")) != uses_nsenter:
            problems.append("%s: hostPID is %r but the LVM prefix is %r" % (name_of(o), spec.get("hostPID"), prefix))
        if arg_value(node["args"], "--node-id") != "$(NODE_NAME)":
            problems.append("%s: --node-id must come from spec.nodeName" % name_of(o))
        env = {e["name"]: e for e in node.get("env") or []}
        if ((env.get("NODE_NAME") or {}).get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath") != "spec.nodeName":
            problems.append("%s: NODE_NAME must be the downward API's spec.nodeName" % name_of(o))
        vols = {v["name"]: v for v in spec.get("volumes") or []}
        host = {m["mountPath"]: (vols.get(m["name"], {}).get("hostPath") or {}).get("path") for m in node.get("volumeMounts") or []}
        for path in ("/dev", "/run/lvm", "/etc/lvm", "/lib/modules"):
            if host.get(path) != path:
                problems.append("%s: lvsnap node lacks the host mount %s" % (name_of(o), path))
        if not any(m["mountPath"] == "/lib/modules" and m.get("readOnly") for m in node["volumeMounts"]):
            problems.append("%s: /lib/modules must be mounted read-only" % name_of(o))
        bidir = [m for m in node["volumeMounts"] if m.get("mountPropagation") == "Bidirectional"]
        kubelet_dirs = [host.get(m["mountPath"]) for m in bidir]
        if not bidir or any(host.get(m["mountPath"]) != m["mountPath"] for m in bidir):
            problems.append("%s: the kubelet directory must be mounted at its own path, Bidirectional" % name_of(o))
        reg = by_name.get("node-driver-registrar")
        if not reg:
            problems.append("%s: no node-driver-registrar" % name_of(o))
        else:
            reg_path = arg_value(reg["args"], "--kubelet-registration-path")
            plugin_dir = host.get("/csi")
            want = "%s/plugins/%s/csi.sock" % (kubelet_dirs[0] if kubelet_dirs else "?", driver)
            if reg_path != want or plugin_dir != os.path.dirname(want):
                problems.append("%s: registration path %r, plugin dir %r, want %r" % (name_of(o), reg_path, plugin_dir, want))
            reg_host = {m["mountPath"]: (vols.get(m["name"], {}).get("hostPath") or {}).get("path") for m in reg.get("volumeMounts") or []}
            if reg_host.get("/registration") != "%s/plugins_registry" % (kubelet_dirs[0] if kubelet_dirs else "?"):
                problems.append("%s: /registration must be <kubeletDir>/plugins_registry" % name_of(o))
        if "liveness-probe" not in by_name:
            problems.append("%s: no livenessprobe sidecar" % name_of(o))

    for p in problems:
        print("  FAIL %s" % p)
    if not problems:
        print("  RBAC (%d roles, %d bindings), images, CSIDriver, classes, controller and node pods: ok" % (
            len(by_kind["ClusterRole"]) + len(by_kind["Role"]),
            len(by_kind["ClusterRoleBinding"]) + len(by_kind["RoleBinding"])))
    return 1 if problems else 0


# ---------------------------------------------------------------- flags

def help_text(binary, *sub):
    r = subprocess.run([binary, *sub, "--help"], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise SystemExit("  FAIL `%s %s --help` exited %d: %s" % (binary, " ".join(sub), r.returncode, r.stderr.strip()))
    return r.stdout


def has_flag(text, flag):
    return re.search(r"(^|[\s,\[])%s([\s=,\[<]|$)" % re.escape(flag), text, re.M) is not None


def cmd_flags(rendered, binary):
    problems, checked = [], 0
    helps = {}
    for o in load(rendered):
        if o["kind"] not in ("Deployment", "DaemonSet", "StatefulSet", "Job"):
            continue
        for c in containers(o)[1]:
            if c["name"] != "lvsnap":
                continue
            args = (c.get("command") or [])[1:] + (c.get("args") or [])
            subs = [a for a in args if a in LVSNAP_SUBCOMMANDS]
            if len(subs) != 1:
                problems.append("%s: container lvsnap has no single subcommand in %s" % (name_of(o), args))
                continue
            sub = subs[0]
            i = args.index(sub)
            for scope, part in ((None, args[:i]), (sub, args[i + 1:])):
                key = scope or ""
                if key not in helps:
                    helps[key] = help_text(binary, *([scope] if scope else []))
                for a in part:
                    if not a.startswith("--"):
                        problems.append("%s: unexpected argument %r %s the subcommand" % (
                            name_of(o), a, "before" if scope is None else "after"))
                        continue
                    flag = a.split("=", 1)[0]
                    checked += 1
                    if not has_flag(helps[key], flag):
                        problems.append("%s: `lvsnap %s` has no flag %s (from %r)" % (name_of(o), scope or "", flag, a))
    for p in problems:
        print("  FAIL %s" % p)
    if not problems:
        print("  %d flag uses found in `lvsnap [<subcommand>] --help`" % checked)
    return 1 if problems else 0


# ---------------------------------------------------------------- rbac

def triples(rule):
    """(apiGroup, resource, verb) a rule grants. A rule narrowed by
    resourceNames grants no list, watch or create of the kind: it counts for
    nothing here; nonResourceURLs are not API objects."""
    if rule.get("resourceNames") or not rule.get("resources"):
        return set()
    return {(g, r, v) for g in rule.get("apiGroups") or [] for r in rule["resources"] for v in rule.get("verbs") or []}


def required_triples(entries, where):
    out = set()
    for entry in entries or []:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[2], list)):
            raise SystemExit("  FAIL %s: %r is not [apiGroup, resource, [verbs]]" % (where, entry))
        group, resource, verbs = entry
        for x in [group, resource] + verbs:
            if not isinstance(x, str) or "*" in x:
                raise SystemExit("  FAIL %s: %r: names and verbs only, no wildcard" % (where, entry))
        out |= {(group, resource, v) for v in verbs}
    return out


def fmt(t):
    return "%s/%s %s" % (t[0] or "core", t[1], t[2])


def cmd_rbac(rendered, required_path):
    objs = load(rendered)
    with open(required_path) as f:
        components = yaml.safe_load(f)["components"]
    by_kind = collections.defaultdict(list)
    for o in objs:
        by_kind[o["kind"]].append(o)
    problems = []

    # The ServiceAccounts the pods run as, and the release namespace.
    sa_of = {}
    for role, kind in (("controller", "Deployment"), ("node", "DaemonSet")):
        for o in by_kind[kind]:
            sa_of[role] = (o["metadata"]["namespace"], containers(o)[0].get("serviceAccountName"))
    images = {}
    snapshotter_args = []
    for o in by_kind["Deployment"] + by_kind["DaemonSet"]:
        for c in containers(o)[1]:
            repo, _, tag = c["image"].rpartition(":")
            images.setdefault(repo, set()).add(tag)
            if c["name"] == "csi-snapshotter":
                snapshotter_args += c.get("args") or []
    group_snapshots = "--feature-gates=CSIVolumeGroupSnapshot=true" in snapshotter_args

    # What the rendered roles grant each ServiceAccount.
    roles = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
             for o in by_kind["ClusterRole"] + by_kind["Role"]}
    granted = collections.defaultdict(lambda: {"cluster": set(), "namespace": set()})
    for b in by_kind["ClusterRoleBinding"] + by_kind["RoleBinding"]:
        ref = b["roleRef"]
        role = roles.get((ref["kind"], "" if ref["kind"] == "ClusterRole" else b["metadata"]["namespace"], ref["name"]))
        if role is None:
            continue  # the policy stage reports it
        grants = set()
        for rule in role.get("rules") or []:
            grants |= triples(rule)
        for sub in b.get("subjects") or []:
            if sub.get("kind") != "ServiceAccount":
                continue
            key = (sub.get("namespace", ""), sub["name"])
            if b["kind"] == "ClusterRoleBinding":
                granted[key]["cluster"] |= grants
            elif b["metadata"]["namespace"] == key[0]:
                granted[key]["namespace"] |= grants

    need = collections.defaultdict(lambda: {"cluster": set(), "namespace": set()})
    for name, comp in components.items():
        sas = comp.get("serviceAccount")
        sas = sas if isinstance(sas, list) else [sas]
        image = comp.get("image")
        if image:
            tags = images.get(image)
            if not tags:
                problems.append("%s: no container runs %s" % (name, image))
            elif tags != {comp["tag"]}:
                problems.append("%s: the chart runs %s:%s, its rules were read from %s: read that release's deploy/ RBAC again"
                                % (name, image, ",".join(sorted(tags)), comp["tag"]))
        cluster = required_triples(comp.get("cluster"), name + ".cluster")
        groups = required_triples(comp.get("clusterWithGroupSnapshots"), name + ".clusterWithGroupSnapshots")
        if group_snapshots:
            cluster |= groups
        namespace = required_triples(comp.get("namespace"), name + ".namespace")
        for sa_role in sas:
            if sa_role not in sa_of:
                problems.append("%s: no pod runs as the %s ServiceAccount" % (name, sa_role))
                continue
            key = sa_of[sa_role]
            have = granted[key]
            for t in sorted(cluster - have["cluster"]):
                problems.append("%s (%s/%s): no ClusterRole grants %s" % (name, key[0], key[1], fmt(t)))
            for t in sorted(namespace - have["cluster"] - have["namespace"]):
                problems.append("%s (%s/%s): nothing grants %s in namespace %s" % (name, key[0], key[1], fmt(t), key[0]))
            need[key]["cluster"] |= cluster
            need[key]["namespace"] |= namespace
            version = " %s" % comp["tag"] if image else ""
            print("  %-22s %-10s %3d cluster-wide, %2d in the namespace%s" % (
                name + version, sa_role, len(cluster), len(namespace), " (with group snapshots)" if groups and group_snapshots else ""))
    # Nothing granted that no container asks for.
    for key, have in sorted(granted.items()):
        for t in sorted(have["cluster"] - need[key]["cluster"] - need[key]["namespace"]):
            problems.append("%s/%s: granted %s, which no component of deploy/helm/rbac-required.yaml needs" % (key[0], key[1], fmt(t)))
        for t in sorted(have["namespace"] - need[key]["namespace"] - need[key]["cluster"]):
            problems.append("%s/%s: granted %s in its namespace, which no component needs" % (key[0], key[1], fmt(t)))
    for p in problems:
        print("  FAIL %s" % p)
    if not problems:
        print("  every ServiceAccount has exactly what its containers' releases ask for")
    return 1 if problems else 0


def cmd_rbac_mutants(rendered, required_path):
    """The rbac check must notice what it exists for: each mutant of the
    rendered chart must FAIL with the problem it plants."""
    import contextlib
    import io
    import tempfile

    def provisioner_role(objs):
        return next(o for o in objs if o["kind"] == "ClusterRole" and o["metadata"]["name"].endswith("-provisioner"))

    def drop_volumesnapshots_update(objs):
        for rule in provisioner_role(objs)["rules"]:
            if "volumesnapshots" in rule["resources"]:
                rule["verbs"] = [v for v in rule["verbs"] if v != "update"]
        return "no ClusterRole grants snapshot.storage.k8s.io/volumesnapshots update"

    def grant_secrets(objs):
        provisioner_role(objs)["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]})
        return "granted core/secrets get, which no component"

    def older_provisioner(objs):
        for o in objs:
            for c in containers(o)[1] if o["kind"] == "Deployment" else []:
                if c["name"] == "csi-provisioner":
                    c["image"] = c["image"].rsplit(":", 1)[0] + ":v6.2.0"
        return "the chart runs registry.k8s.io/sig-storage/csi-provisioner:v6.2.0"

    def no_lease_role(objs):
        objs[:] = [o for o in objs if not (o["kind"] == "Role" and o["metadata"]["name"].endswith("-leader-election"))]
        return "nothing grants coordination.k8s.io/leases delete"

    failed = 0
    for mutate in (drop_volumesnapshots_update, grant_secrets, older_provisioner, no_lease_role):
        objs = load(rendered)
        want = mutate(objs)
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            yaml.safe_dump_all(objs, f)
            f.flush()
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                rc = cmd_rbac(f.name, required_path)
        if rc != 0 and want in out.getvalue():
            print("  ok   %s: reported (%s)" % (mutate.__name__, want))
        else:
            print("  FAIL %s: not reported as %r:" % (mutate.__name__, want))
            print(out.getvalue())
            failed = 1
    return failed


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    cmd, rest = argv[1], argv[2:]
    table = {"split": (cmd_split, 2), "crd-kinds": (cmd_crd_kinds, 2), "policy": (cmd_policy, 1), "flags": (cmd_flags, 2),
             "rbac": (cmd_rbac, 2), "rbac-mutants": (cmd_rbac_mutants, 2)}
    if cmd not in table or len(rest) != table[cmd][1]:
        print(__doc__)
        return 2
    return table[cmd][0](*rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
