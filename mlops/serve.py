"""Serve a model artifact directory with the prediction API on this machine, to read its /docs or try requests.

The same app as the Lambda function (inference.app), started by uvicorn with MODEL_DIR instead of a
promoted model.tar.gz; no API key, no capture. uvicorn comes with the project (requirements.txt), not the image.
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path

from contracts.env import SERVING_RUNTIMES, Var, flag_value

EXAMPLES = """example:
  mlops train --train wine.csv --model-dir out/ --target quality
  mlops serve --model-dir out/                     # then open http://127.0.0.1:8080/docs
  mlops serve --model-dir out/ --port 9000 --strict-categories --runtime scikit-learn"""
NO_UVICORN = ("mlops serve needs uvicorn, which the project installs (requirements.txt): "
              "pip install -e . (or pip install uvicorn)")


class ServeError(Exception):
    """The command cannot start; the message says why and what to change."""


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog or "mlops serve", description=__doc__.split("\n\n")[0],
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True, type=Path,
                        help="an unpacked model artifact (what `mlops train --model-dir` writes)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; the local API has no auth)")
    parser.add_argument("--port", type=_port, default=8080, help="port to listen on (default 8080)")
    parser.add_argument("--runtime", choices=SERVING_RUNTIMES, default="auto",
                        help="as the serving_runtime context key (default auto: model.onnx when present)")
    parser.add_argument("--strict-categories", action="store_true",
                        help="refuse unseen categories (422), as the strict_categories context key")
    return parser


def check_model_dir(model_dir: Path) -> str:
    """The artifact's model name, once its manifest and metadata check out; ServeError naming the problem otherwise."""
    from contracts.artifact import ArtifactError, open_artifact

    if not model_dir.is_dir():
        raise ServeError(f"--model-dir {model_dir}: not a directory (give an unpacked artifact, such as the "
                         "folder `mlops train --model-dir` wrote, or a model.tar.gz extracted)")
    try:
        return open_artifact(model_dir).metadata.model_name
    except ArtifactError as exc:
        raise ServeError(f"--model-dir {model_dir}: not a model artifact the API can serve: {exc}") from exc


def serving_env(args: argparse.Namespace, model_name: str) -> dict[str, str]:
    """The variables inference.settings reads, as the serving stack would set them; capture and tracing off."""
    return {Var.MODEL_DIR: str(args.model_dir.resolve()), Var.MODEL_NAME: model_name, Var.CAPTURE_STREAM: "",
            Var.SERVING_RUNTIME: args.runtime, Var.STRICT_CATEGORIES: flag_value(args.strict_categories),
            Var.TRACE_DISABLED: "true"}


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        import uvicorn
    except ImportError:
        print(NO_UVICORN, file=sys.stderr)
        return 2
    try:
        model_name = check_model_dir(args.model_dir)
    except ServeError as exc:
        print(f"mlops serve: {exc}", file=sys.stderr)
        return 2
    os.environ.update(serving_env(args, model_name))  # inference.app reads them when it is imported
    from inference.app import app, state

    if state.predictor is None:  # the artifact checked out, yet the runtime refused it (e.g. library versions)
        print(f"mlops serve: cannot serve {args.model_dir}: {state.reason}", file=sys.stderr)
        return 2
    url = f"http://{_url_host(args.host)}:{args.port}"
    print(f"serving {model_name} version {state.predictor.model_version} from {args.model_dir} "
          f"({state.predictor.model.name}) on {url}: interactive docs at {url}/docs; Ctrl-C stops", flush=True)
    if not _is_loopback(args.host):
        print(f"note: {args.host} is reachable from other machines and this API has no auth", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 1 to 65535, got {text!r}")
    return int(text)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


if __name__ == "__main__":
    sys.exit(main())
