"""`gateway simulate`: the partner simulator (gateway/devkit/simulator.py) in the foreground."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from gateway.errors import GatewayError
from gateway.cli._common import console


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)


def simulate(
    partner: Annotated[str, typer.Argument(help="housing, platform, or all (both on one port).")],
    port: Annotated[int, typer.Option("--port", help="TCP port on 127.0.0.1 (0: any free port, printed).")] = 8701,
    token: Annotated[str, typer.Option("--token", envvar="GATEWAY_SIMULATOR_TOKEN", help="The bearer token callers must send.")] = "demo-token",
    host: Annotated[str, typer.Option("--host", help="Address to listen on (loopback by default).")] = "127.0.0.1",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated data and of the faults.")] = 0,
    throttle_rate: Annotated[float, typer.Option("--throttle-rate", help="Share of calls answered 429 with Retry-After.")] = 0.0,
    error_rate: Annotated[float, typer.Option("--error-rate", help="Share of calls answered 502.")] = 0.0,
    retry_after: Annotated[int, typer.Option("--retry-after", help="Seconds in Retry-After.")] = 1,
    items: Annotated[int, typer.Option("--items", help="Generated housing items after the specimen.")] = 40,
    pages: Annotated[int, typer.Option("--pages", help="Generated platform pages after the specimen.")] = 3,
    per_page: Annotated[int, typer.Option("--per-page", help="Messages per generated platform page.")] = 4,
    malformed_page: Annotated[Optional[int], typer.Option("--malformed-page", help="Serve this platform page (1 = the specimen) as malformed XML.")] = None,
    record_dir: Annotated[Optional[Path], typer.Option("--record-dir", help="Write each FKXX received here.", file_okay=False)] = None,
    answer_delay: Annotated[float, typer.Option("--answer-delay", help="Seconds before the county's own requests are answered in the inbox.")] = 0.0,
    serve_files: Annotated[
        Optional[list[Path]],
        typer.Option("--serve", exists=True, dir_okay=False, help="Serve these JHXX document(s) as the platform's inbox (repeatable)."),
    ] = None,
) -> None:
    """Serve the housing registry's and/or the national platform's API on loopback, as the
    formats describe them (with 429s and 502s when asked, deterministic by seed)."""
    from gateway.devkit.simulator import PartnerSimulator

    serve = {"housing": ("housing",), "platform": ("platform",), "all": ("housing", "platform")}.get(partner)
    if serve is None:
        raise GatewayError(f"Unknown partner {partner!r}. Valid choices: all, housing, platform")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    simulator = PartnerSimulator(
        serve, token=token, host=host, port=port, seed=seed, throttle_rate=throttle_rate, error_rate=error_rate,
        retry_after=retry_after, housing_items=items, platform_pages=pages, per_page=per_page, record_dir=record_dir,
        serve_documents=_served(serve_files) if serve_files else None, answer_delay=answer_delay,
    )
    if serve_files and simulator.platform is None:
        raise GatewayError("--serve is for the platform: gateway simulate platform --serve FILE.xml")
    if malformed_page is not None:
        if simulator.platform is None or not 1 <= malformed_page <= len(simulator.platform.pages):
            raise GatewayError(f"--malformed-page must be a platform page 1-{len(simulator.platform.pages) if simulator.platform else 0}")
        simulator.platform.corrupt(malformed_page - 1)
    import socket

    probe = socket.socket()
    try:
        probe.bind((host, port))
    except OSError as exc:
        raise GatewayError(f"Cannot listen on {host}:{port}: {exc.strerror}. Choose another --port") from None
    finally:
        probe.close()
    simulator.port = port
    if port == 0:
        with socket.socket() as free:
            free.bind((host, 0))
            simulator.port = free.getsockname()[1]
    paths = []
    if simulator.housing is not None:
        paths.append("GET /api/v1/occupancy-changes")
    if simulator.platform is not None:
        paths += ["GET /exchange/inbox", "POST /exchange/feedback", "POST /exchange/requests"]
    console.print(f"Simulating {partner} on {simulator.url} ({', '.join(paths)}); token {token!r}; seed {seed}. Ctrl-C stops.", markup=False)
    try:
        simulator.serve_forever()
    except KeyboardInterrupt:
        pass
    console.print("Stopped.")


def _served(paths: list[Path]) -> list[bytes]:
    """The --serve documents, checked before the server starts."""
    from lxml import etree

    documents = []
    for path in paths:
        data = path.read_bytes()
        try:
            root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
        except etree.XMLSyntaxError as exc:
            raise GatewayError(f"--serve {path}: not well-formed XML: {exc.msg}") from None
        if root.tag != "JHXX":
            raise GatewayError(f"--serve {path}: the root element is <{root.tag}>, expected <JHXX>")
        documents.append(data)
    return documents
