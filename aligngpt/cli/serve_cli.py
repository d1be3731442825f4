"""``aligngpt-eval serve``: its flags, and the process around the server (signals, warnings)."""
from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys
import threading
from pathlib import Path

from ..errors import ConfigError
from ..serve import ServeConfig, create_server
from .checks import DTYPES, device, integer, number

_positive_int = integer(1)
_non_negative_float = number(0)
_port = integer(0, 65535)  # 0 picks a free one


def add_serve_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to an ``argparse`` subparsers object."""
    defaults = ServeConfig()
    p = subparsers.add_parser("serve", help="OpenAI-compatible chat-completions server for a model (loopback by default)")
    p.add_argument("--model", default="toy", help="'toy' (bundled tiny model), a checkpoint folder, or a hub id")
    p.add_argument("--host", default=defaults.host,
                   help="address to bind (default 127.0.0.1; anything else exposes an unauthenticated model)")
    p.add_argument("--port", type=_port, default=defaults.port)
    p.add_argument("--device", type=device, default="cpu", help="cpu | cuda | cuda:N | mps")
    p.add_argument("--dtype", choices=DTYPES, default=None, help="default: fp16 on GPU, fp32 on CPU")
    p.add_argument("--template", default=None, help="conversation template (default: the processor's, vicuna_v1)")
    p.add_argument("--max-batch-size", type=_positive_int, default=defaults.max_batch_size,
                   help="most requests per model.generate call (1 disables batching)")
    p.add_argument("--batch-window-ms", type=_non_negative_float, default=defaults.batch_window_ms,
                   help="how long the first request of a batch waits for companions")
    p.add_argument("--max-queue", type=_positive_int, default=defaults.max_queue,
                   help="requests allowed to wait for the model; more get HTTP 429")
    p.add_argument("--max-request-bytes", type=_positive_int, default=defaults.max_request_bytes,
                   help="largest request body accepted (HTTP 413 above)")
    p.add_argument("--max-new-tokens-limit", type=_positive_int, default=defaults.max_new_tokens_limit,
                   help="cap on max_tokens (and its default)")
    p.set_defaults(func=cmd_serve)
    return p


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _model_name(model_arg: str) -> str:
    if model_arg == "toy":
        return "aligngpt-toy"
    path = Path(model_arg).expanduser()
    return path.resolve().name if path.is_dir() else model_arg


def cmd_serve(args) -> int:
    """Load the model, serve until Ctrl-C / SIGTERM, then shut down cleanly."""
    import aligngpt
    from ..harness.toy import toy_model_dir

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    path = toy_model_dir() if args.model == "toy" else args.model
    model, processor = aligngpt.load_pretrained(path, device=args.device, dtype=args.dtype)
    model.eval()
    config = ServeConfig(
        host=args.host, port=args.port, max_batch_size=args.max_batch_size, batch_window_ms=args.batch_window_ms,
        max_queue=args.max_queue, max_request_bytes=args.max_request_bytes,
        max_new_tokens_limit=args.max_new_tokens_limit,
    )
    try:
        server = create_server(model, processor, config, name=_model_name(args.model), template=args.template)
    except OSError as exc:  # port taken, address not on this machine, privileged port
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    if not _is_loopback(args.host):
        print(f"warning: serving on {args.host}: anyone who can reach this address can use the model "
              "(no authentication)", file=sys.stderr)
    print(f"serving {server.runner.name} on {server.url}/v1 (template {server.runner.template}); Ctrl-C stops",
          file=sys.stderr)

    def _stop(signum, frame):  # shutdown() blocks until serve_forever returns: call it elsewhere
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = signal.signal(signal.SIGTERM, _stop) if threading.current_thread() is threading.main_thread() else None
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        server.batcher.close()
        server.server_close()
    return 0
