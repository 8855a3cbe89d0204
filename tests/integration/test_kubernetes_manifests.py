"""deploy/kubernetes/: the manifests parse (python3-yaml; `kubectl kustomize`, offline,
when kubectl is installed), agree with each other (selectors, named ports, the mounted
config path, the grace period against drain_delay + drain_timeout, the ServiceMonitor's
Service and port, the headless backend Service the upstream names), and the
ConfigMap's TOML passes `wsgate -t`. Then that TOML runs (moved to 127.0.0.1 ports and
an echo backend): the probes' paths answer as the Deployment expects, /ready turning
503 when SIGTERM starts the drain.
"""

import asyncio
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import tomllib
import unittest
import urllib.error
import urllib.request

import yaml

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

K8S = os.path.join(h.SOURCE_DIR, "deploy", "kubernetes")
TOKEN_PATH = "/var/run/secrets/wsgate/write-token"


def load_manifests():
    docs = []
    for path in sorted(glob.glob(os.path.join(K8S, "*.yaml"))):
        with open(path, encoding="utf-8") as f:
            docs += [(os.path.basename(path), d) for d in yaml.safe_load_all(f) if d]
    return docs


def one(docs, kind, name=None):
    found = [d for _, d in docs if d["kind"] == kind and (name is None or
                                                           d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind} {name or ''}: {len(found)} found"
    return found[0]


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def http_get(port: int, path: str):
    """The status of GET `path`, or None while nothing listens on `port` yet (the admin
    server may bind after the listeners: a probe that cannot connect is "not ready", as
    for the kubelet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, ConnectionError):
        return None


class Manifests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.docs = load_manifests()
        cm = one(cls.docs, "ConfigMap", "wsgate-config")
        cls.toml_text = cm["data"]["wsgate.toml"]
        cls.toml = tomllib.loads(cls.toml_text)

    def test_every_resource_well_formed(self):
        kinds = sorted(d["kind"] for _, d in self.docs)
        self.assertEqual(kinds, sorted(["Namespace", "ConfigMap", "Secret", "Deployment",
                                        "Service", "Service", "Service", "PodDisruptionBudget",
                                        "ServiceMonitor", "Kustomization"]))
        kustomization = one(self.docs, "Kustomization")
        listed = set(kustomization["resources"])
        files = {f for f, d in self.docs if d["kind"] != "Kustomization"}
        self.assertEqual(listed, files, "kustomization.yaml lists every manifest")
        for f, d in self.docs:
            if d["kind"] in ("Kustomization", "Namespace"):
                continue
            with self.subTest(file=f, kind=d["kind"]):
                self.assertIn("apiVersion", d)
                self.assertEqual(d["metadata"]["namespace"], "wsgate")

    def test_kubectl_kustomize_offline(self):
        kubectl = shutil.which("kubectl")
        if not kubectl:
            self.skipTest("kubectl not installed: the manifests were parsed with python3-yaml "
                          "only")
        proc = subprocess.run([kubectl, "kustomize", K8S], capture_output=True, text=True,
                              timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        built = [d for d in yaml.safe_load_all(proc.stdout) if d]
        self.assertEqual(len(built), len(self.docs) - 1)  # all but the Kustomization

    def test_deployment_agrees_with_config_and_services(self):
        dep = one(self.docs, "Deployment", "wsgate")
        pod = dep["spec"]["template"]
        labels = pod["metadata"]["labels"]
        self.assertTrue(selects(dep["spec"]["selector"]["matchLabels"], labels))
        c = pod["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        listener_port = int(self.toml["listener"][0]["address"].rsplit(":", 1)[1])
        admin_port = int(self.toml["admin"]["address"].rsplit(":", 1)[1])
        self.assertEqual(ports, {"ws": listener_port, "admin": admin_port})
        self.assertEqual(c["readinessProbe"]["httpGet"], {"path": "/ready", "port": "admin"})
        self.assertEqual(c["livenessProbe"]["httpGet"], {"path": "/healthz", "port": "admin"})
        # The config file the container is told to read is the ConfigMap's key.
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        config_arg = c["args"][c["args"].index("-c") + 1]
        self.assertEqual(volumes["config"]["configMap"]["name"], "wsgate-config")
        self.assertEqual(config_arg, mounts["config"] + "/wsgate.toml")
        # The admin token file is the Secret's key.
        self.assertEqual(self.toml["admin"]["write_token_file"],
                         mounts["admin-token"] + "/write-token")
        secret = one(self.docs, "Secret", volumes["admin-token"]["secret"]["secretName"])
        self.assertIn("write-token", secret["stringData"])
        # After SIGTERM: drain_delay with the listeners open, then up to drain_timeout.
        self.assertNotIn("lifecycle", c, "drain_delay replaces a preStop sleep")
        delay = int(re.fullmatch(r"(\d+)s", self.toml["drain_delay"]).group(1))
        drain = int(re.fullmatch(r"(\d+)s", self.toml["drain_timeout"]).group(1))
        self.assertGreater(delay, 0)
        self.assertGreater(pod["spec"]["terminationGracePeriodSeconds"], delay + drain)
        for svc in [d for _, d in self.docs if d["kind"] == "Service" and
                    d["spec"].get("selector", {}).get("app.kubernetes.io/name") == "wsgate"]:
            with self.subTest(service=svc["metadata"]["name"]):
                self.assertTrue(selects(svc["spec"]["selector"], labels))
                for p in svc["spec"]["ports"]:
                    self.assertIn(p["targetPort"], ports)
        pdb = one(self.docs, "PodDisruptionBudget")
        self.assertTrue(selects(pdb["spec"]["selector"]["matchLabels"], labels))

    def test_service_monitor_finds_the_admin_port(self):
        sm = one(self.docs, "ServiceMonitor")
        services = [d for _, d in self.docs if d["kind"] == "Service" and
                    selects(sm["spec"]["selector"]["matchLabels"],
                            d["metadata"].get("labels", {}))]
        self.assertEqual([s["metadata"]["name"] for s in services], ["wsgate-admin"])
        self.assertEqual([e["port"] for e in sm["spec"]["endpoints"]],
                         [p["name"] for p in services[0]["spec"]["ports"]])
        self.assertEqual(sm["spec"]["endpoints"][0]["path"], "/metrics")

    def test_upstream_is_the_headless_backend_service(self):
        server = self.toml["upstream"][0]["servers"][0]
        host, port = server.rsplit(":", 1)
        name, namespace = host.split(".")[:2]
        self.assertTrue(host.endswith(".svc.cluster.local"), host)
        svc = one(self.docs, "Service", name)
        self.assertEqual(svc["metadata"]["namespace"], namespace)
        self.assertEqual(svc["spec"]["clusterIP"], "None")
        self.assertIn(int(port), [p["port"] for p in svc["spec"]["ports"]])
        self.assertIn("resolve_interval", self.toml["upstream"][0])

    def test_configmap_toml_passes_check(self):
        h.require_wsgate(self)
        with tempfile.TemporaryDirectory(prefix="wsgate-k8s-") as tmp:
            token = os.path.join(tmp, "write-token")
            with open(token, "w", encoding="ascii") as f:
                f.write("test-token\n")
            path = os.path.join(tmp, "wsgate.toml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(self.toml_text.replace(TOKEN_PATH, token))
            proc = subprocess.run([h.WSGATE_BIN, "-t", "-c", path], capture_output=True,
                                  text=True, timeout=30)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertIn("configuration ok", proc.stderr)


class ProbesAgainstTheConfig(h.GatewayCase):
    async def test_probe_paths_and_drain(self):
        cm = one(load_manifests(), "ConfigMap", "wsgate-config")
        text = cm["data"]["wsgate.toml"]
        backend = await self.start_backend()
        port, admin_port = h.free_port(), h.free_port()
        tmp = tempfile.TemporaryDirectory(prefix="wsgate-k8s-")
        self.addCleanup(tmp.cleanup)
        token = os.path.join(tmp.name, "write-token")
        with open(token, "w", encoding="ascii") as f:
            f.write("test-token\n")
        text = (text.replace(TOKEN_PATH, token)
                .replace('"0.0.0.0:8080"', f'"127.0.0.1:{port}"')
                .replace('"0.0.0.0:9090"', f'"127.0.0.1:{admin_port}"')
                .replace('"chat-backend.wsgate.svc.cluster.local:9001"', f'"{backend.address}"')
                .replace('drain_timeout = "30s"', 'drain_timeout = "5s"')
                # Long enough for a loaded machine to check the delay; the cleanup's
                # second SIGTERM ends it.
                .replace('drain_delay = "5s"', 'drain_delay = "20s"')
                .replace('drain_spread = "20s"', 'drain_spread = "1s"'))
        self.assertNotIn("0.0.0.0", text)
        gw = await self.start_gateway(text)
        loop = asyncio.get_running_loop()
        await h.wait_until(lambda: http_get(admin_port, "/ready") == 200, 10, "ready")
        self.assertEqual(await loop.run_in_executor(None, http_get, admin_port, "/healthz"), 200)
        async with h.ws_connect(gw.port, path="/") as ws:
            await ws.send("through the k8s config")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "through the k8s config")
            gw.send_signal(signal.SIGTERM)
            await h.wait_until(lambda: http_get(admin_port, "/ready") == 503, 10,
                               "/ready 503 while draining")
            self.assertEqual(await loop.run_in_executor(None, http_get, admin_port, "/healthz"),
                             200)
            # drain_delay: still relaying (and accepting) until the drain starts.
            await ws.send("during the delay")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "during the delay")


if __name__ == "__main__":
    h.main()
