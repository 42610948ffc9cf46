#!/usr/bin/env python3
"""Checks the Helm chart without a cluster: renders it with the real Helm library
(helm-python-sdk) with default values and with every optional feature on, lints it
strictly (no findings allowed), and validates every rendered manifest of a built-in kind
against the Kubernetes 1.33 schemas (kubernetes-validate). Custom kinds have no schema
there; they are listed as unchecked. Then it asserts least privilege on what was rendered
(security(): non-root, read-only root, no capabilities, one token and one Role, only for
sync-worker's Lease, and NetworkPolicies that admit only what each service needs).
Exit 0 when all is well."""

import json
import pathlib
import re
import sys

import helm_python as helm
import kubernetes_validate as kv
import yaml

CHART = pathlib.Path(__file__).resolve().parent / "wsus"
KUBE = "1.33.0"

EVERYTHING = {
    "database": {"existingSecret": "wsus-db-app", "existingSecretKey": "uri"},
    "secrets": {"existingSecret": "wsus-secrets"},
    "server": {"id": "3f1e0c7a-58a9-4a55-9f1f-0b1c2d3e4f5a", "fqdn": "wsus.example.com"},
    "settings": {"syncProducts": ["a3c2375d-0c8a-42f9-bce0-28333e198407"], "syncLanguages": ["en", "de"], "syncsPerDay": 4,
                 "contentMode": "immediate"},
    "upstream": {"url": "https://uss.example.com:8531", "replica": True, "caSecret": "uss-root"},
    "dssAllowlist": ["dss1.example.com"],
    "publishing": {"signingSecret": "wsus-signing"},
    "contentBaseUrl": "https://cdn.example.com",
    "content": {"persistence": {"existingClaim": "wsus-content"}},
    "otel": {"endpoint": "http://tempo.monitoring:4317"},
    "clientGateway": {"autoscaling": {"enabled": True}, "admission": {"maxInflight": 32, "maxQueued": 256},
                      "trustedProxies": ["10.42.0.0/16"],
                      "tls": {"enabled": True, "certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                              "key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"},
                      "service": {"type": "LoadBalancer"}},
    "reporting": {"autoscaling": {"enabled": True}, "tls": {"enabled": True, "secretName": "wsus-api-tls"},
                  "notifications": {"existingSecret": "wsus-notify", "egressTo": [{"ipBlock": {"cidr": "10.9.0.0/16"}}]}},
    "syncWorker": {"replicas": 2, "autoscaling": {"enabled": True}, "pdb": {"enabled": True}},
    "ingress": {"enabled": True, "className": "nginx", "tls": [{"secretName": "wsus-tls", "hosts": ["wsus.example.com"]}]},
    "httpRoute": {"enabled": True, "parentRefs": [{"name": "edge", "namespace": "gateways"}], "hostnames": ["wsus.example.com"]},
    "networkPolicy": {"enabled": True},
    "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
    "dashboards": {"enabled": True},
}

BAD = {"settings": {"contentMode": "eager"}}
# Content in a bucket needs the bucket's name.
BAD_S3 = {"content": {"store": "s3"}}
# AWS S3 itself, credentials from the pods' identity, the staging bounded.
S3_IDENTITY = {"content": {"store": "s3", "s3": {"bucket": "wsus", "stagingSizeLimit": "50Gi"}}}

# Content in an S3-compatible bucket: no content volume, the bucket's settings and
# credentials, and client-gateway may reach the endpoint.
S3 = {
    "content": {"store": "s3", "s3": {"bucket": "wsus", "endpoint": "http://minio.storage:9000", "prefix": "site-a",
                                      "existingSecret": "wsus-s3"}},
    "networkPolicy": {"enabled": True},
}

# The fewest privileges the chart can run with: no Lease (so no token and no Role), no
# accounts of its own, no volume.
LEAST = {
    "serviceAccount": {"create": False},
    "syncWorker": {"lease": {"enabled": False}, "serviceAccount": {"create": False}},
    "content": {"persistence": {"enabled": False}},
}

ROOT = CHART.parent.parent
LEASE_RS = ROOT / "services" / "sync-worker" / "src" / "lease.rs"
# kube::Api methods and the RBAC verbs they need.
KUBE_VERBS = {"get": "get", "get_opt": "get", "get_metadata": "get", "replace": "update", "create": "create",
              "patch": "patch", "delete": "delete", "list": "list", "watch": "watch", "replace_status": "update",
              "patch_status": "patch", "delete_collection": "deletecollection"}
# What the Lease Role grants: reading and replacing the one Lease the chart creates (so it
# needs no "create", which RBAC cannot limit to a name).
LEASE_VERBS = ["get", "update"]
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}


def check(name, values):
    print(f"== {name}")
    report = helm.lint(str(CHART), values, strict=True, kube_version=f"v{KUBE}")
    findings = report.get("messages", []) + [{"error": e} for e in report.get("errors", [])]
    for f in findings:
        print(f"  lint: {f}")
    with helm.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values=values, name="wsus", namespace="wsus")
    kinds, unchecked, invalid = {}, set(), []
    for path, text in sorted(rendered.items()):
        if not path.endswith(".yaml"):
            continue
        for doc in yaml.safe_load_all(text):
            if not doc:
                continue
            kind = f"{doc.get('apiVersion')}/{doc.get('kind')}"
            kinds[kind] = kinds.get(kind, 0) + 1
            try:
                kv.validate(doc, KUBE, strict=True)
            except kv.SchemaNotFoundError:
                unchecked.add(kind)
            except kv.ValidationError as e:
                invalid.append(f"{path}: {kind} {doc['metadata']['name']}: {e.message} at {list(e.path)}")
    for k, n in sorted(kinds.items()):
        print(f"  {n} x {k}{'  (no schema: unchecked)' if k in unchecked else ''}")
    for i in invalid:
        print(f"  INVALID {i}")
    problems = security(rendered, values)
    for p in problems:
        print(f"  INSECURE {p}")
    return not findings and not invalid and not problems, rendered


def docs(rendered):
    for path, text in sorted(rendered.items()):
        if path.endswith(".yaml"):
            yield from (d for d in yaml.safe_load_all(text) if d)


def pod_spec(doc):
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]


def dockerfile_user():
    m = re.findall(r"^USER\s+(\d+):(\d+)\s*$", (ROOT / "Dockerfile").read_text(), re.M)
    return tuple(int(x) for x in m[-1]) if m else None


def lease_verbs():
    """The RBAC verbs lease.rs's calls on its kube::Api need."""
    calls = set(re.findall(r"\.api\.(\w+)\(", LEASE_RS.read_text()))
    unknown = calls - KUBE_VERBS.keys()
    return {KUBE_VERBS[c] for c in calls if c in KUBE_VERBS}, unknown


def security(rendered, values):
    """Least-privilege findings on one rendering (empty = none)."""
    bad = []
    all_docs = list(docs(rendered))
    by_kind = {}
    for d in all_docs:
        by_kind.setdefault(d["kind"], []).append(d)
    lease_on = values.get("syncWorker", {}).get("lease", {}).get("enabled", True)
    image_user = dockerfile_user()
    if image_user is None or 0 in image_user:
        bad.append(f"Dockerfile: the image must end with a numeric non-root USER uid:gid, not {image_user}")

    # Pods and containers.
    accounts = {}
    lease_name = None
    for d in all_docs:
        if d["kind"] not in WORKLOADS:
            continue
        name = f"{d['kind']} {d['metadata']['name']}"
        template = pod_spec(d)
        spec = template["spec"]
        component = template["metadata"]["labels"].get("app.kubernetes.io/component")
        psc = spec.get("securityContext") or {}
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(host):
                bad.append(f"{name}: {host}")
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for v in volumes.values():
            if "hostPath" in v:
                bad.append(f"{name}: hostPath volume {v['name']}")
        if any("persistentVolumeClaim" in v for v in volumes.values()) and not psc.get("fsGroup"):
            bad.append(f"{name}: mounts a claim but sets no fsGroup")
        sa = spec.get("serviceAccountName", "default")
        accounts.setdefault(sa, []).append(component)
        token = spec.get("automountServiceAccountToken")
        if component == "sync-worker":
            if token is not lease_on:
                bad.append(f"{name}: automountServiceAccountToken is {token}, the Lease is {'on' if lease_on else 'off'}")
        elif token is not False:
            bad.append(f"{name}: automountServiceAccountToken must be false (only sync-worker uses the API)")
        containers = spec.get("containers", []) + spec.get("initContainers", [])
        for c in containers:
            cname = f"{name} container {c['name']}"
            sc = c.get("securityContext") or {}

            def effective(key):
                return sc[key] if key in sc else psc.get(key)

            if effective("runAsNonRoot") is not True:
                bad.append(f"{cname}: runAsNonRoot is not true")
            for key in ("runAsUser", "runAsGroup"):
                v = effective(key)
                if not isinstance(v, int) or v <= 0:
                    bad.append(f"{cname}: {key} must be a fixed non-root id, not {v}")
            if (effective("runAsUser"), effective("runAsGroup")) != image_user:
                bad.append(f"{cname}: runs as {effective('runAsUser')}:{effective('runAsGroup')}, "
                           f"the image's USER is {image_user}")
            if (effective("seccompProfile") or {}).get("type") != "RuntimeDefault":
                bad.append(f"{cname}: seccompProfile is not RuntimeDefault")
            if sc.get("allowPrivilegeEscalation") is not False:
                bad.append(f"{cname}: allowPrivilegeEscalation is not false")
            if sc.get("readOnlyRootFilesystem") is not True:
                bad.append(f"{cname}: readOnlyRootFilesystem is not true")
            if sc.get("privileged"):
                bad.append(f"{cname}: privileged")
            caps = sc.get("capabilities") or {}
            if "ALL" not in caps.get("drop", []) or caps.get("add"):
                bad.append(f"{cname}: capabilities must drop ALL and add none, not {caps}")
            if any("hostPort" in p for p in c.get("ports", [])):
                bad.append(f"{cname}: hostPort")
            # Writable places: emptyDirs, and the content claim for sync-worker only.
            writable = {}
            for m in c.get("volumeMounts", []):
                v = volumes.get(m["name"], {})
                ro = m.get("readOnly") or (v.get("persistentVolumeClaim") or {}).get("readOnly")
                if not ro:
                    writable[m["mountPath"]] = v
            for path, v in writable.items():
                if "emptyDir" in v:
                    continue
                if "persistentVolumeClaim" in v and component == "sync-worker" and path == "/var/lib/wsus/content":
                    continue
                bad.append(f"{cname}: {path} is writable and not an emptyDir")
            if component in ("client-gateway", "reporting", "sync-worker") and "/tmp" not in writable:
                bad.append(f"{cname}: no writable /tmp (the root filesystem is read-only)")
            if component == "sync-worker":
                if "/var/lib/wsus/content" not in writable:
                    bad.append(f"{cname}: the content directory is not writable")
                env = {e["name"]: e.get("value") for e in c.get("env", [])}
                lease_name = env.get("WSUS_LEASE_NAME")
            if component == "client-gateway" and "/var/lib/wsus/content" in writable:
                bad.append(f"{cname}: client-gateway only reads the content")

    # Accounts: only sync-worker's may hold a token or a Role, and it is its own.
    sync_accounts = [sa for sa, comps in accounts.items() if "sync-worker" in comps]
    for sa in sync_accounts:
        others = sorted(set(accounts[sa]) - {"sync-worker"})
        if others and lease_on:
            bad.append(f"ServiceAccount {sa}: sync-worker shares it with {others}")
    for d in by_kind.get("ServiceAccount", []):
        if d.get("automountServiceAccountToken") is not False:
            bad.append(f"ServiceAccount {d['metadata']['name']}: automountServiceAccountToken must be false")
    for kind in ("ClusterRole", "ClusterRoleBinding"):
        for d in by_kind.get(kind, []):
            bad.append(f"{kind} {d['metadata']['name']}: the chart needs no cluster-wide permission")
    roles, bindings, leases = by_kind.get("Role", []), by_kind.get("RoleBinding", []), by_kind.get("Lease", [])
    needed, unknown = lease_verbs()
    if unknown:
        bad.append(f"lease.rs calls kube::Api methods this check does not know: {sorted(unknown)}")
    if not needed - {"create"} <= set(LEASE_VERBS):
        bad.append(f"lease.rs needs {sorted(needed)}; the Role grants {LEASE_VERBS} (create: the chart's Lease)")
    if not lease_on:
        for d in roles + bindings + leases:
            bad.append(f"{d['kind']} {d['metadata']['name']}: rendered while the Lease is off")
    else:
        expected_rules = [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                           "resourceNames": [lease_name], "verbs": LEASE_VERBS}]
        if len(roles) != 1 or roles[0].get("rules") != expected_rules:
            bad.append(f"Roles: want exactly one, with rules {expected_rules}; got "
                       f"{[(r['metadata']['name'], r.get('rules')) for r in roles]}")
        if [d["metadata"]["name"] for d in leases] != [lease_name]:
            bad.append(f"Lease: want exactly {lease_name} (sync-worker's WSUS_LEASE_NAME) rendered, got "
                       f"{[d['metadata']['name'] for d in leases]}")
        want_subjects = [{"kind": "ServiceAccount", "name": sa, "namespace": "wsus"} for sa in sync_accounts]
        if (len(bindings) != 1 or len(roles) != 1
                or bindings[0]["roleRef"] != {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                              "name": roles[0]["metadata"]["name"]}
                or bindings[0].get("subjects") != want_subjects):
            bad.append(f"RoleBindings: want exactly one, of the Role to {want_subjects}")

    # NetworkPolicies: every service's pods selected, no rule open on every port, gRPC only
    # from its one caller, egress limited except for sync-worker.
    if values.get("networkPolicy", {}).get("enabled", True):
        policies = {}
        for d in by_kind.get("NetworkPolicy", []):
            comp = d["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/component")
            policies[comp] = d["spec"]
        callers = {"reporting": "client-gateway", "sync-worker": "reporting"}
        for comp in ("client-gateway", "reporting", "sync-worker"):
            p = policies.get(comp)
            if p is None:
                bad.append(f"NetworkPolicy: none selects {comp}")
                continue
            types = p.get("policyTypes", [])
            if "Ingress" not in types:
                bad.append(f"NetworkPolicy {comp}: does not limit ingress")
            for rule in p.get("ingress", []):
                ports = [x.get("port") for x in rule.get("ports", [])]
                if not ports:
                    bad.append(f"NetworkPolicy {comp}: an ingress rule opens every port")
                if "grpc" in ports:
                    peers = rule.get("from", [])
                    want = callers[comp] if comp in callers else None
                    got = [x.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component")
                           for x in peers]
                    if want is None:
                        bad.append(f"NetworkPolicy {comp}: admits gRPC, which {comp} does not serve")
                    elif ports != ["grpc"] or got != [want]:
                        bad.append(f"NetworkPolicy {comp}: gRPC must be reachable from {want} only, not {peers}")
            if comp in ("client-gateway", "reporting"):
                if "Egress" not in types:
                    bad.append(f"NetworkPolicy {comp}: does not limit egress")
                for rule in p.get("egress", []):
                    if not rule.get("ports"):
                        bad.append(f"NetworkPolicy {comp}: an egress rule opens every port")
    return bad


def bucket_problems(rendered):
    """What the S3 rendering gets wrong: a volume claim or mount, a missing setting or
    credential, an egress rule that keeps client-gateway from the endpoint."""
    bad = []
    all_docs = list(docs(rendered))
    bad += [f"PersistentVolumeClaim {d['metadata']['name']}" for d in all_docs if d["kind"] == "PersistentVolumeClaim"]
    settings = next(d for d in all_docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-settings"))
    want = {"WSUS_CONTENT_STORE": "s3", "WSUS_S3_BUCKET": "wsus", "WSUS_S3_ENDPOINT": "http://minio.storage:9000",
            "WSUS_S3_PREFIX": "site-a"}
    bad += [f"ConfigMap {k}={settings['data'].get(k)!r}, not {v!r}" for k, v in want.items() if settings["data"].get(k) != v]
    for d in all_docs:
        comp = d.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/component")
        if d["kind"] != "Deployment" or comp not in ("client-gateway", "sync-worker"):
            continue
        spec = pod_spec(d)["spec"]
        if any("persistentVolumeClaim" in v for v in spec.get("volumes", [])):
            bad.append(f"{comp}: mounts a volume claim")
        env = [e["name"] for c in spec["containers"] for e in c.get("env", [])]
        bad += [f"{comp}: no {k}" for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if k not in env]
    gateway = next(d for d in all_docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"].endswith("client-gateway"))
    ports = [p.get("port") for rule in gateway["spec"].get("egress", []) for p in rule.get("ports", [])]
    if 9000 not in ports:
        bad.append(f"NetworkPolicy client-gateway: egress to the bucket's port 9000 missing ({ports})")
    return bad


def identity_problems(rendered):
    """With the pods' own identity (no Secret): no AWS_* keys, egress to AWS's S3 port,
    STS and the metadata agents, and the staging emptyDir bounded."""
    bad = []
    all_docs = list(docs(rendered))
    for d in all_docs:
        comp = d.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/component")
        if d["kind"] != "Deployment" or comp not in ("client-gateway", "sync-worker"):
            continue
        spec = pod_spec(d)["spec"]
        env = [e["name"] for c in spec["containers"] for e in c.get("env", [])]
        bad += [f"{comp}: {k} without a Secret" for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if k in env]
        if comp == "sync-worker":
            content = next(v for v in spec["volumes"] if v["name"] == "content")
            if content.get("emptyDir", {}).get("sizeLimit") != "50Gi":
                bad.append(f"sync-worker: staging {content}, not an emptyDir of 50Gi")
    gateway = next(d for d in all_docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"].endswith("client-gateway"))
    egress = gateway["spec"].get("egress", [])
    ports = [p.get("port") for rule in egress for p in rule.get("ports", [])]
    if 443 not in ports:
        bad.append(f"NetworkPolicy client-gateway: no egress to 443 for S3 and STS ({ports})")
    cidrs = [t.get("ipBlock", {}).get("cidr") for rule in egress for t in rule.get("to", [])]
    bad += [f"NetworkPolicy client-gateway: no egress to {c}" for c in ("169.254.169.254/32", "169.254.170.23/32")
            if c not in cidrs]
    return bad


def notification_problems(rendered):
    """With reporting.notifications.existingSecret: reporting reads both the settings
    ConfigMap and the Secret (one envFrom list), and may reach the notification ports."""
    bad = []
    all_docs = list(docs(rendered))
    reporting = next(d for d in all_docs if d["kind"] == "Deployment"
                     and d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "reporting")
    sources = [e for c in pod_spec(reporting)["spec"]["containers"] for e in c.get("envFrom", [])]
    if not any(e.get("configMapRef", {}).get("name", "").endswith("-settings") for e in sources):
        bad.append(f"reporting: no settings ConfigMap in envFrom {sources}")
    if not any(e.get("secretRef", {}).get("name") == "wsus-notify" for e in sources):
        bad.append(f"reporting: no notifications Secret in envFrom {sources}")
    policy = next(d for d in all_docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"].endswith("-reporting"))
    ports = [p.get("port") for rule in policy["spec"].get("egress", []) for p in rule.get("ports", [])]
    bad += [f"NetworkPolicy reporting: no egress to {p}" for p in (25, 465, 587, 443) if p not in ports]
    return bad


def lint_refuses(values):
    """Whether a strict lint refuses these values."""
    try:
        report = helm.lint(str(CHART), values, strict=True, kube_version=f"v{KUBE}")
        return bool(report.get("errors")) or bool(report.get("messages"))
    except helm.HelmError:
        return True


def main():
    ok_default, rendered = check("default values", {})
    ok_s3, rendered_s3 = check("content in an S3 bucket", S3)
    s3_bad = bucket_problems(rendered_s3)
    ok_identity, rendered_identity = check("content in AWS S3 with the pods' identity", S3_IDENTITY)
    s3_bad += identity_problems(rendered_identity)
    for b in s3_bad:
        print(f"  BUCKET {b}")
    ok_all, rendered_all = check("every optional feature on", EVERYTHING)
    notify_bad = notification_problems(rendered_all)
    for b in notify_bad:
        print(f"  NOTIFICATIONS {b}")
    ok_least, _ = check("fewest privileges (no Lease, no accounts, no volume)", LEAST)
    # The schema refuses what no service would accept.
    refused = lint_refuses(BAD)
    print(f"== a bad value is refused by values.schema.json: {refused}")
    refused_s3 = lint_refuses(BAD_S3)
    print(f"== s3 without a bucket is refused: {refused_s3}")
    # Every value of values.yaml is described by the schema (additionalProperties closes it).
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def undescribed(v, s, path):
        if isinstance(v, dict) and s.get("type") == "object" and "properties" in s:
            for k, child in v.items():
                if k not in s["properties"]:
                    yield f"{path}.{k}"
                else:
                    yield from undescribed(child, s["properties"][k], f"{path}.{k}")

    missing = list(undescribed(values, schema, "values"))
    print(f"== values without a schema: {missing or 'none'}")
    everything = "\n".join(rendered_all.values())
    features = ["HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress", "HTTPRoute", "NetworkPolicy",
                "ServiceMonitor", "grafana_dashboard", "kind: Job", "WSUS_TLS_CERT", "WSUS_UPSTREAM_CA_FILE",
                "kubernetes.io/tls", "secretName: wsus-api-tls", "WSUS_SOAP_MAX_INFLIGHT", "WSUS_TRUSTED_PROXIES",
                "WSUS_SIGNING_CERTIFICATE_FILE", "secretName: wsus-signing", "name: wsus-notify", "10.9.0.0/16"]
    absent = [f for f in features if f not in everything]
    print(f"== features rendered when on: {'all' if not absent else 'missing ' + ', '.join(absent)}")
    good = (ok_default and ok_all and ok_least and ok_s3 and ok_identity and not s3_bad and refused and refused_s3 and not missing
            and not absent and not notify_bad)
    print("chart: OK" if good else "chart: FAILED")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
