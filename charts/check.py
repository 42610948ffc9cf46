#!/usr/bin/env python3
"""Checks the Helm chart without a cluster: renders it with the real Helm library
(helm-python-sdk) with default values and with every optional feature on, lints it
strictly (no findings allowed), and validates every rendered manifest of a built-in kind
against the Kubernetes 1.33 schemas (kubernetes-validate). Custom kinds have no schema
there; they are listed as unchecked. Exit 0 when all is well."""

import json
import pathlib
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
    "contentBaseUrl": "https://cdn.example.com",
    "content": {"persistence": {"existingClaim": "wsus-content"}},
    "otel": {"endpoint": "http://tempo.monitoring:4317"},
    "clientGateway": {"autoscaling": {"enabled": True},
                      "tls": {"enabled": True, "certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                              "key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"},
                      "service": {"type": "LoadBalancer"}},
    "reporting": {"autoscaling": {"enabled": True}},
    "syncWorker": {"replicas": 2, "autoscaling": {"enabled": True}, "pdb": {"enabled": True}},
    "ingress": {"enabled": True, "className": "nginx", "tls": [{"secretName": "wsus-tls", "hosts": ["wsus.example.com"]}]},
    "httpRoute": {"enabled": True, "parentRefs": [{"name": "edge", "namespace": "gateways"}], "hostnames": ["wsus.example.com"]},
    "networkPolicy": {"enabled": True},
    "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
    "dashboards": {"enabled": True},
}

BAD = {"settings": {"contentMode": "eager"}}


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
    return not findings and not invalid, rendered


def main():
    ok_default, rendered = check("default values", {})
    ok_all, rendered_all = check("every optional feature on", EVERYTHING)
    # The schema refuses what no service would accept.
    try:
        report = helm.lint(str(CHART), BAD, strict=True, kube_version=f"v{KUBE}")
        refused = bool(report.get("errors")) or bool(report.get("messages"))
    except helm.HelmError:
        refused = True
    print(f"== a bad value is refused by values.schema.json: {refused}")
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
                "kubernetes.io/tls"]
    absent = [f for f in features if f not in everything]
    print(f"== features rendered when on: {'all' if not absent else 'missing ' + ', '.join(absent)}")
    good = ok_default and ok_all and refused and not missing and not absent
    print("chart: OK" if good else "chart: FAILED")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
