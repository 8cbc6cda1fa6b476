#!/usr/bin/env python3
"""bereit's main job, from a fresh machine: a cluster, the images, the chart, Azure Machine Learning's digits
model deployed as a scoring web service, and held-out digits scored with its key.

    make demo                       # python3 -m e2e.demo
    make demo USE_CURRENT_CONTEXT=1 # python3 -m e2e.demo --use-current-context

Without --use-current-context it starts the local cluster of e2e/cluster (root; the first run
builds Kubernetes from its Go modules). Everything it creates stays, so you can go on from
there; the last lines say how to clean up. Running it again converges and is quick.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

from e2e.workflow import chart, digits, host, images
from e2e.workflow.commands import REPO
from e2e.workflow.progress import Progress, WorkflowError, format_seconds
from e2e.workflow.scoring import Endpoint, accuracy, request, score

NAMESPACE = "bereit-demo"
TARGET = "dev"
BUILD = REPO / "examples" / "digits" / "build"
STEPS = 10


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--use-current-context", action="store_true",
                        help="use the cluster kubectl points at instead of starting the local one")
    parser.add_argument("--namespace", default=NAMESPACE, help=f"where the service goes (default {NAMESPACE})")
    parser.add_argument("--base-image", default=None,
                        help="image to build bereit's images on (default: the local Debian base on the local "
                             f"cluster, else $BEREIT_BASE_IMAGE or {images.PUBLIC_BASE_IMAGE})")
    parser.add_argument("--load", choices=("auto", "local", "kind", "none"), default="auto",
                        help="how images reach the nodes (auto: the local cluster's containerd, kind load, "
                             "or nothing for other clusters, whose nodes must pull them)")
    parser.add_argument("--version", type=int, choices=(1, 2), default=1, help="model version to deploy")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    progress = Progress(total=STEPS)
    show = progress.note
    print("bereit demo: Azure Machine Learning's digits model as a scoring web service", flush=True)
    try:
        run(args, progress, show)
    except WorkflowError as error:
        print(f"\nerror: {error}", file=sys.stderr, flush=True)
        print(f"(after {format_seconds(progress.elapsed())})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    return 0


def run(args: argparse.Namespace, progress: Progress, show) -> None:
    with progress.step("Python packages on this machine"):
        host.ensure_python_packages(show)

    if args.use_current_context:
        with progress.step("Cluster: the current kube context"):
            target = host.current_context(show)
    else:
        with progress.step("Cluster: the local full cluster (e2e/cluster)"):
            target = host.start_local_cluster(show)
    kubectl, namespace = target.kubectl, args.namespace

    with progress.step("Base image"):
        if args.base_image:
            base = args.base_image
        elif target.local:
            base = images.local_base_image(show)
        else:
            base = os.environ.get("BEREIT_BASE_IMAGE", images.PUBLIC_BASE_IMAGE)
        show(f"building on {base}")

    with progress.step("bereit's images: operator and runtime"):
        built = images.build_bereit_images(base, show)

    with progress.step(f"Train the digits model (version {args.version}) and build its image"):
        model_folder = digits.train(args.version, BUILD, show)
        model_image = images.build_model_image(model_folder, digits.model_image(args.version), base, show)

    with progress.step("Put the images on the cluster's nodes"):
        load_images(args.load, target, [built.operator, built.runtime, model_image], show)

    with progress.step("Install the chart (helm upgrade --install bereit charts/bereit)"):
        chart.install(kubectl, built, show)

    with progress.step(f"ComputeTarget {TARGET!r} (DevTest) in namespace {namespace}"):
        kubectl("create", "namespace", namespace, check=False)
        kubectl.apply([digits.compute_target(TARGET)], namespace)
        found = digits.wait_target(kubectl, namespace, TARGET, show)
        show(f"Ready: {digits.condition(found, 'Ready').get('message')}")

    with progress.step(f"Register Model digits version {args.version}, deploy InferenceService digits, wait for Healthy"):
        kubectl.apply([digits.model(args.version)], namespace)
        digits.wait_model(kubectl, namespace, digits.model(args.version)["metadata"]["name"], show)
        kubectl.apply([digits.code_config_map(), digits.inference_service(args.version)], namespace)
        service = digits.wait_healthy(kubectl, namespace, digits.SERVICE, show, models=f"digits:{args.version}")

    with progress.step("Score the held-out digits with the primary key"):
        keys = digits.keys(kubectl, namespace, digits.SERVICE)
        test = digits.held_out(BUILD)
        with Endpoint(kubectl, namespace, digits.SERVICE, cluster_ip=target.local) as endpoint:
            show(f"through {endpoint.via}: {endpoint.base}")
            predictions = score(endpoint.url("/score"), keys["primaryKey"], test.data)
            refused = request(endpoint.url("/score"), json.dumps({"data": test.data[:1]}).encode(), None).status
            url = endpoint.url("/score")
    report(service, url, keys, test, predictions, refused, target.local, namespace, progress)


def load_images(mode: str, target: host.Target, references: list[str], show) -> None:
    if mode == "auto":
        mode = "local" if target.local else "kind" if target.kind_cluster else "none"
    if mode == "local":
        images.load_into_local_node(references, target.cluster_dir, show)
    elif mode == "kind":
        if not target.kind_cluster:
            raise WorkflowError("--load kind needs a kind-* kube context")
        images.load_into_kind(references, target.kind_cluster, show)
    else:
        show("not loading: the nodes must be able to pull " + ", ".join(references))


def report(service: dict, local_url: str, keys: dict, test: digits.HeldOut, predictions: list,
           refused: int, local: bool, namespace: str, progress: Progress) -> None:
    status = service["status"]
    share = accuracy(predictions, test.labels)
    wrong = [(i, p, t) for i, (p, t) in enumerate(zip(predictions, test.labels)) if int(p) != int(t)]
    print(f"\npredictions for the first 30 of {len(predictions)} held-out digits:")
    print("  predicted: " + " ".join(str(p) for p in predictions[:30]))
    print("  actual:    " + " ".join(str(t) for t in test.labels[:30]))
    print(f"accuracy: {share:.4f} ({len(predictions) - len(wrong)} of {len(predictions)} right)")
    if wrong:
        print("  wrong: " + ", ".join(f"#{i} said {p}, is {t}" for i, p, t in wrong[:10]) + (" ..." if len(wrong) > 10 else ""))
    print(f"without the key: HTTP {refused}")
    print(f"\nscoring URI (inside the cluster): {status['scoringUri']}")
    print(f"swagger URI:                      {status['swaggerUri']}")
    url = local_url if local else status["scoringUri"]
    sample = json.dumps({"data": [[compact(x) for x in test.data[0]]]}, separators=(",", ":"))
    where = ("from this machine (the host reaches the Service's ClusterIP)" if local
             else "from a pod in the cluster, or after `kubectl port-forward -n "
                  f"{namespace} service/digits 8080:80` with http://localhost:8080/score")
    print(f"\nready to paste, {where}:")
    print(f"  curl -sS -H 'Authorization: Bearer {keys['primaryKey']}' -H 'Content-Type: application/json' \\\n"
          f"       -d {shlex.quote(sample)} {url}")
    print(f"  (that digit is a {test.labels[0]})")
    print(f"\nkeys: kubectl get secret -n {namespace} {status['keysSecretName']} -o jsonpath='{{.data.primaryKey}}' | base64 -d")
    if local:
        print(f"kubectl: export KUBECONFIG={host.LOCAL_CLUSTER_DIR / 'kubeconfig'}")
    print(f"status: kubectl get inferenceservice -n {namespace} digits")
    print(f"clean up: kubectl delete namespace {namespace}; helm uninstall bereit -n {chart.RELEASE_NAMESPACE}"
          + ("; e2e/cluster/down.sh" if local else ""))
    print("\ntimings:")
    print(progress.summary())
    if share < 0.9:
        raise WorkflowError(f"accuracy {share:.4f} is below 0.9")
    if refused != 401:
        raise WorkflowError(f"a request without the key got HTTP {refused}, not 401")


def compact(number: float) -> float | int:
    """0.0 -> 0, 0.5 -> 0.5: a shorter curl line, the same numbers."""
    return int(number) if float(number).is_integer() else number


if __name__ == "__main__":
    sys.exit(main())
