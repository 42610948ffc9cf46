#!/usr/bin/env python3
"""Starts what the chart describes with podman and uses it as an administrator and a
client would, so any mismatch between the chart and the binaries fails here: a path that
must be writable, a variable the chart does not set, a probe on the wrong port.

What it does, in order:
- renders the chart (the real Helm library) with the image built by scripts/image, one
  replica each, the database and an upstream server on this host;
- applies what podman's `kube play` cannot, as the cluster would: the Secret (podman 4.3
  reads secretKeyRef values from a secret of its own format), the PersistentVolumeClaim (a
  named volume, given to the pods' fsGroup as the kubelet does), Services (each name
  resolves to the IP of the one pod it selects, through hostAliases; the Service port must
  be the container's);
- runs the migration Job's pod to completion, then plays the three Deployments with their
  security contexts, read-only root filesystems, environment and volumes, and waits until
  each passes its own readinessProbe;
- checks that every container runs as the chart says (user, read-only root, no
  capabilities, no privilege escalation);
- `wsusctl` in the image, from another container, talks to the reporting pod: a sync
  from the upstream (sync-worker writes the content volume), an approval;
- a simulated client scans through the client-gateway pod, downloads the approved files
  from the content that sync-worker wrote, and reports; the reporting pod lists it.

With `--s3` the chart is rendered with `content.store: s3` against an S3 server on this
host (s3s-fs, which scripts/test-setup installs) and its keys in an existing Secret: no
claim may be rendered and no pod may mount a content volume; sync-worker uploads into the
bucket and client-gateway serves the client from it.

Prints one summary line; exit 0 only when all of that held. Environment (set by
charts/pods): PGPORT and PG_BIN (a Postgres on this host that the pods' network may reach),
WSUS_POD_IMAGE, WSUS_BIN_DIR (the host's binaries for the upstream and the client),
WSUS_PODS_KEEP=1 to leave everything running afterwards."""

import base64
import json
import os
import pathlib
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import helm_python as helm
import yaml

CHART = pathlib.Path(__file__).resolve().parent / "wsus"
NETWORK = "wsus-pods"
SUBNET = "10.89.42.0/24"
HOST = "10.89.42.1"  # this host, as the pods see it (the network's gateway)
POD_IPS = {"client-gateway": "10.89.42.11", "reporting": "10.89.42.12", "sync-worker": "10.89.42.13"}
IMAGE = os.environ.get("WSUS_POD_IMAGE", "localhost/wsus:dev")
BIN = pathlib.Path(os.environ.get("WSUS_BIN_DIR", CHART.parent.parent / "target" / "debug"))
PGPORT = os.environ["PGPORT"]
READY_SECONDS = 120
COMPONENT = "app.kubernetes.io/component"
S3_BUCKET = "wsus-content"


class Failed(Exception):
    pass


def run(*args, check=True, env=None, timeout=600):
    r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)
    if check and r.returncode != 0:
        raise Failed(f"{' '.join(args)}: exit {r.returncode}\n{r.stdout}{r.stderr}")
    return r.stdout


def podman(*args, check=True):
    return run("podman", *args, check=check)


def psql(db, sql):
    run(os.path.join(os.environ.get("PG_BIN", "/usr/bin"), "psql"), "-h", "127.0.0.1", "-p", PGPORT, "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-qc", sql)


def remove_everything():
    """What an earlier run may have left: pods, the secret, the volume, the network."""
    for pod in podman("pod", "ls", "--format", "{{.Name}}", "--filter", "label=app.kubernetes.io/instance=wsus",
                      check=False).split():
        podman("pod", "rm", "-f", pod, check=False)
    podman("pod", "rm", "-f", "wsus-migrate", check=False)
    podman("pod", "rm", "-f", "wsus-network-holder", check=False)
    podman("secret", "rm", "wsus-secrets", check=False)
    podman("secret", "rm", "wsus-s3", check=False)
    podman("volume", "rm", "-f", "wsus-content", check=False)
    podman("network", "rm", "-f", NETWORK, check=False)


def start_upstream(work):
    """An upstream server on this host (client-gateway alone serves downstream servers):
    a generated catalog with its files, imported into a database of its own."""
    psql("postgres", "CREATE DATABASE upstream")
    url = f"postgres://postgres@127.0.0.1:{PGPORT}/upstream"
    docs, content = work / "upstream-docs", work / "upstream-content"
    run(str(BIN / "catalog-gen"), str(docs), "--revisions", "60", "--seed", "7", "--content", str(content))
    env = {**os.environ, "DATABASE_URL": url, "WSUS_CONTENT_DIR": str(content)}
    run(str(BIN / "sync-worker"), "migrate", env=env)
    run(str(BIN / "sync-worker"), "import", str(docs), "--json", env=env)
    port = free_port()
    log = open(work / "upstream.log", "w")
    # Its own reporting service is not needed here; the default address would reach the
    # reporting pod, whose ports podman also publishes on this host.
    proc = subprocess.Popen([str(BIN / "client-gateway")], stdout=log, stderr=log, env={
        **env, "WSUS_HTTP_ADDR": f"0.0.0.0:{port}", "WSUS_SERVER_FQDN": HOST, "WSUS_MIGRATE_ON_START": "false",
        "WSUS_REPORTING_GRPC": "http://127.0.0.1:9"})
    wait_http(f"http://127.0.0.1:{port}/readyz", "the upstream", proc=proc, log=work / "upstream.log")
    return proc, f"http://{HOST}:{port}"


def s3s_fs():
    """s3s-fs from PATH, else where `cargo install` puts it."""
    found = shutil.which("s3s-fs")
    if found:
        return found
    cargo = pathlib.Path(os.environ.get("CARGO_HOME", pathlib.Path.home() / ".cargo")) / "bin" / "s3s-fs"
    if cargo.is_file():
        return str(cargo)
    raise Failed("no s3s-fs (scripts/test-setup installs it)")


def start_s3(work):
    """An S3 server on this host that the pods reach at the network's gateway, with an
    empty bucket; its keys go into a Secret, as an administrator's would."""
    root = work / "s3"
    (root / S3_BUCKET).mkdir(parents=True)
    port = free_port()
    key, secret = "wsus-pods-key", secrets.token_hex(16)
    log = open(work / "s3.log", "w")
    proc = subprocess.Popen([s3s_fs(), "--host", "0.0.0.0", "--port", str(port), "--access-key", key,
                             "--secret-key", secret, str(root)], stdout=log, stderr=log)
    deadline = time.time() + 20
    import socket
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        if proc.poll() is not None or time.time() > deadline:
            raise Failed(f"s3s-fs did not start: {(work / 's3.log').read_text()[-2000:]}")
        time.sleep(0.1)
    data = {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    (work / "s3-secret.json").write_text(json.dumps({k: base64.b64encode(v.encode()).decode() for k, v in data.items()}))
    podman("secret", "create", "wsus-s3", str(work / "s3-secret.json"))
    return proc, f"http://{HOST}:{port}", root / S3_BUCKET


def volumes_of(doc):
    """The volumes a pod template mounts, by kind (persistentVolumeClaim, emptyDir...)."""
    spec = doc["spec"]["template"]["spec"]
    return {v["name"]: next(k for k in v if k != "name") for v in spec.get("volumes", [])}


def free_port():
    """A free port below the ephemeral range (32768 and up), where no outgoing connection
    of this machine can take it before the listener binds."""
    import random
    import socket
    for port in random.sample(range(15000, 19000), 4000):
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
                return port
            except OSError:
                continue
    raise Failed("no free port in 15000..19000")


def wait_http(url, what, seconds=READY_SECONDS, proc=None, log=None):
    deadline = time.time() + seconds
    last = ""
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise Failed(f"{what} exited: {pathlib.Path(log).read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception as e:  # not up yet
            last = str(e)
        time.sleep(0.5)
    raise Failed(f"{what} not ready at {url} within {seconds} s: {last}")


def render(values):
    with helm.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values=values, name="wsus", namespace="wsus")
    return [d for path, text in sorted(rendered.items()) if path.endswith(".yaml")
            for d in yaml.safe_load_all(text) if d]


def container_port(pod_spec, port):
    """A probe's or a Service's target port, by number or by the container's port name."""
    if isinstance(port, int):
        return port
    for c in pod_spec["containers"]:
        for p in c.get("ports", []):
            if p.get("name") == port:
                return p["containerPort"]
    raise Failed(f"no container port named {port}")


def play(doc, extra, ip=None):
    path = pathlib.Path(tempfile.mkstemp(suffix=".yaml")[1])
    path.write_text(yaml.safe_dump_all(extra + [doc], sort_keys=False))
    args = ["kube", "play", "--network", NETWORK]
    if ip:
        args += ["--ip", ip]
    # podman publishes the pods' ports on this host too; the gRPC ports (50051, 50052) lie in
    # the ephemeral range, where an outgoing connection may hold one for a moment.
    for attempt in range(3):
        try:
            return podman(*args, str(path))
        except Failed as e:
            if "address already in use" not in str(e) or attempt == 2:
                raise
            name = doc["metadata"]["name"] + ("-pod-0" if doc["kind"] == "Deployment" else "")
            podman("pod", "rm", "-f", name, check=False)
            time.sleep(2)


def pin_bridge_address():
    """A Linux bridge whose address was never set takes the lowest of its ports', so each
    short-lived container (wsusctl's) can change it under the pods, whose cached neighbour
    entry for this host then points nowhere: their connections to the database stall. The
    bridge lives while a container is on the network, so an empty pod holds it for the
    whole run, and its address is set before any other pod joins."""
    podman("pod", "create", "--name", "wsus-network-holder", "--network", NETWORK)
    podman("pod", "start", "wsus-network-holder")
    bridge = podman("network", "inspect", NETWORK, "--format", "{{.NetworkInterface}}").strip()
    run("ip", "link", "set", "dev", bridge, "address", "02:00:0a:59:2a:01")


def containers_of(pod):
    return [c for c in podman("ps", "-a", "--pod", "--filter", f"pod={pod}", "--format", "{{.Names}}").split()
            if not c.endswith("-infra")]


def check_security(name, spec, container):
    """The container runs as the chart's security contexts say."""
    info = json.loads(podman("inspect", name))[0]
    pod_ctx, ctx = spec.get("securityContext", {}), container.get("securityContext", {})
    want_user = f"{ctx.get('runAsUser', pod_ctx.get('runAsUser'))}:{ctx.get('runAsGroup', pod_ctx.get('runAsGroup'))}"
    problems = []
    if info["Config"]["User"] != want_user:
        problems.append(f"user {info['Config']['User']}, the chart says {want_user}")
    if ctx.get("readOnlyRootFilesystem") and not info["HostConfig"]["ReadonlyRootfs"]:
        problems.append("a writable root filesystem")
    if "ALL" in ctx.get("capabilities", {}).get("drop", []) and info.get("EffectiveCaps"):
        problems.append(f"capabilities {info['EffectiveCaps']}")
    if ctx.get("allowPrivilegeEscalation") is False and "no-new-privileges" not in info["HostConfig"]["SecurityOpt"]:
        problems.append("privilege escalation allowed")
    if problems:
        raise Failed(f"{name}: " + "; ".join(problems))


def wsusctl(token, *args):
    """wsusctl from the image, in a container of its own on the pods' network, reaching
    the reporting pod by its Service name."""
    out = podman("run", "--rm", "--pull=never", "--network", NETWORK,
                 "--add-host", f"wsus-reporting:{POD_IPS['reporting']}", "-e", f"WSUS_API_TOKEN={token}",
                 IMAGE, "wsusctl", "--url", "http://wsus-reporting:8080", *args)
    return out


def logs_of_everything():
    for name in podman("ps", "-a", "--format", "{{.Names}}", check=False).split():
        if name.endswith("-infra"):
            continue
        print(f"----- {name} -----", file=sys.stderr)
        print(podman("logs", "--tail", "40", name, check=False), file=sys.stderr)


def main():
    started = time.time()
    work = pathlib.Path(tempfile.mkdtemp(prefix="wsus-pods."))
    token = secrets.token_hex(16)
    upstream = s3 = None
    bucket = None
    summary = {}
    remove_everything()
    try:
        podman("network", "create", "--subnet", SUBNET, NETWORK)
        pin_bridge_address()
        psql("postgres", "CREATE DATABASE wsus")
        upstream, upstream_url = start_upstream(work)
        content = {}
        if "--s3" in sys.argv[1:]:
            s3, endpoint, bucket = start_s3(work)
            content = {"content": {"store": "s3", "s3": {"bucket": S3_BUCKET, "endpoint": endpoint,
                                                         "prefix": "pods", "existingSecret": "wsus-s3"}}}

        docs = render({
            **content,
            "image": {"repository": IMAGE.rsplit(":", 1)[0], "tag": IMAGE.rsplit(":", 1)[1], "pullPolicy": "Never"},
            "database": {"url": f"postgres://postgres@{HOST}:{PGPORT}/wsus"},
            "secrets": {"apiTokens": f"admin:{token}"},
            # File locations name the client-gateway pod, which the client reaches directly.
            "server": {"fqdn": POD_IPS["client-gateway"]},
            "upstream": {"url": upstream_url},
            "settings": {"contentMode": "immediate", "syncsPerDay": 1},
            "clientGateway": {"replicas": 1}, "reporting": {"replicas": 1},
            # No Kubernetes API here for the Lease: one sync-worker, as the chart allows.
            "syncWorker": {"replicas": 1, "lease": {"enabled": False}},
        })
        by_kind = {}
        for d in docs:
            by_kind.setdefault(d["kind"], []).append(d)

        # The Secret, as podman 4.3 reads a secretKeyRef: a JSON map of base64 values.
        (secret,) = by_kind["Secret"]
        data = {k: base64.b64encode(v.encode()).decode() for k, v in secret.get("stringData", {}).items()}
        data.update(secret.get("data", {}))
        (work / "secret.json").write_text(json.dumps(data))
        podman("secret", "create", secret["metadata"]["name"], str(work / "secret.json"))
        config_maps = by_kind.get("ConfigMap", [])

        # Each claim a named volume, owned by the pods' fsGroup as the kubelet makes it.
        for claim in by_kind.get("PersistentVolumeClaim", []):
            name = claim["metadata"]["name"]
            podman("volume", "create", name)
            mount = podman("volume", "inspect", name, "--format", "{{.Mountpoint}}").strip()
            os.chown(mount, 65532, 65532)
            os.chmod(mount, 0o2775)

        # Services: the name resolves to the one pod it selects; no proxy remaps ports.
        deployments = {d["spec"]["template"]["metadata"]["labels"][COMPONENT]: d for d in by_kind["Deployment"]}
        if bucket is not None:
            # A bucket instead of a volume: no claim, and no pod mounts one.
            if by_kind.get("PersistentVolumeClaim"):
                raise Failed("content.store s3 still renders a PersistentVolumeClaim")
            for component, d in deployments.items():
                claims = [n for n, kind in volumes_of(d).items() if kind == "persistentVolumeClaim"]
                if claims:
                    raise Failed(f"{component} mounts {claims} with content.store s3")
        aliases = {}
        for svc in by_kind["Service"]:
            component = svc["spec"]["selector"][COMPONENT]
            spec = deployments[component]["spec"]["template"]["spec"]
            for p in svc["spec"]["ports"]:
                target = container_port(spec, p.get("targetPort", p["port"]))
                if target != p["port"]:
                    raise Failed(f"Service {svc['metadata']['name']} port {p['port']} -> {target}: not run here")
            aliases.setdefault(POD_IPS[component], []).append(svc["metadata"]["name"])
        host_aliases = [{"ip": ip, "hostnames": names} for ip, names in sorted(aliases.items())]

        # The migration Job, as its pod, to completion.
        (job,) = by_kind["Job"]
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "wsus-migrate", "labels": job["spec"]["template"]["metadata"]["labels"]},
               "spec": job["spec"]["template"]["spec"]}
        t = time.time()
        play(pod, config_maps)
        (migrate,) = containers_of("wsus-migrate")
        check_security(migrate, pod["spec"], pod["spec"]["containers"][0])
        code = podman("wait", migrate).strip()
        if code != "0":
            raise Failed(f"the migration Job failed (exit {code}): {podman('logs', migrate, check=False)}")
        summary["migrate"] = f"{time.time() - t:.1f} s"

        # The Deployments, each at its address, ready through its own readinessProbe.
        for component in ("reporting", "sync-worker", "client-gateway"):
            d = deployments[component]
            if d["spec"].get("replicas", 1) != 1:
                raise Failed(f"{component}: one replica expected")
            d["spec"]["template"]["spec"]["hostAliases"] = host_aliases
            t = time.time()
            play(d, config_maps, ip=POD_IPS[component])
            spec = d["spec"]["template"]["spec"]
            for c in spec["containers"]:
                probe = c.get("readinessProbe", {}).get("httpGet")
                if not probe:
                    raise Failed(f"{component}/{c['name']}: no readinessProbe")
                port = container_port(spec, probe["port"])
                wait_http(f"http://{POD_IPS[component]}:{port}{probe['path']}", f"{component}/{c['name']}")
                name = next(n for n in containers_of(f"{d['metadata']['name']}-pod-0") if n.endswith(f"-{c['name']}"))
                check_security(name, spec, c)
            summary[component] = f"ready in {time.time() - t:.1f} s"

        # An administrator's wsusctl against the reporting pod: a sync from the upstream,
        # which sync-worker runs, writing the content volume.
        run_ = json.loads(wsusctl(token, "--json", "sync", "start", "--wait"))
        if run_.get("result") != "succeeded" or not run_.get("revisions_new"):
            raise Failed(f"the sync from the upstream: {run_}")
        if not run_.get("files_queued") or not run_.get("bytes_received"):
            raise Failed(f"the sync wrote no content (content mode immediate): {run_}")
        summary["sync"] = f"{run_['revisions_new']} revisions, {run_['files_queued']} files, {run_['bytes_received']} bytes"
        # Approve software updates for All Computers, so the client is offered files.
        software = [u for u in json.loads(wsusctl(token, "--json", "updates", "list", "--all"))
                    if u.get("update_type") == "Software"]
        if not software:
            raise Failed("no software update to approve")
        for u in software[:10]:
            wsusctl(token, "updates", "approve", u["update_id"], "--group", "All Computers", "--accept-eula")

        # A simulated client through the client-gateway pod.
        client = run(str(BIN / "wua-sim"), "--server", f"http://{POD_IPS['client-gateway']}:8530",
                     "--clients", "1", "--download", timeout=300)
        files = int(client.strip().splitlines()[-1].split()[0])
        if files < 1:
            raise Failed(f"the client downloaded no file: {client}")
        summary["client"] = f"scanned, {files} files downloaded"
        if bucket is not None:
            objects = [p for p in (bucket / "pods" / "Content").rglob("*") if p.is_file()]
            if len(objects) < files:
                raise Failed(f"{len(objects)} objects in the bucket, the client downloaded {files} files")
            summary["content"] = f"s3, {len(objects)} objects in the bucket, no volume"
        listed = json.loads(wsusctl(token, "--json", "computers", "list"))
        if len(listed) != 1:
            raise Failed(f"reporting lists {len(listed)} computers, not the one that scanned: {listed}")
        summary["wsusctl"] = "1 computer listed"
        print("pods: OK: " + "; ".join(f"{k} {v}" for k, v in summary.items()) + f"; {time.time() - started:.0f} s")
        return 0
    except Failed as e:
        logs_of_everything()
        print(f"pods: FAILED: {e}", file=sys.stderr)
        print("pods: FAILED: " + str(e).splitlines()[0])
        return 1
    finally:
        for proc in (upstream, s3):
            if proc is not None:
                proc.terminate()
        if os.environ.get("WSUS_PODS_KEEP") != "1":
            remove_everything()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
