"""The risk-analysis analyzer in Python: the same HTTP API and results as the Rust analyzer
(``risk-analysis analyzer``), so the gateway can call either one.

Flask, instrumented with OpenTelemetry's Flask instrumentation (a SERVER span per request that
continues the caller's W3C ``traceparent``), exporting OTLP/HTTP from the standard ``OTEL_*``
variables with ``service.name`` fixed to ``analyzer-py``.

    python app.py [--listen 127.0.0.1:8081] [--stop-on-stdin-eof]

With ``--stop-on-stdin-eof`` the process stops when its standard input closes (the demo closes
its children's stdin to stop them); SIGINT and SIGTERM stop it too. Either way it stops
serving, flushes its spans and metrics, and exits 0.

Run it through ``scripts/python-analyzer.sh``, which prepares a virtualenv with the pinned
``requirements.txt`` first.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import tomllib
from pathlib import Path

# Stable HTTP semantic conventions (`http.request.method`, `http.response.status_code`, span
# name `POST /analyze`), the names the Rust services use; must be set before the
# instrumentation is imported.
os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")

from flask import Flask, Response, request  # noqa: E402
from opentelemetry import metrics, trace  # noqa: E402
from opentelemetry.instrumentation.flask import FlaskInstrumentor  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.trace import Status, StatusCode  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

import graph  # noqa: E402

SERVICE_NAME = "analyzer-py"
SERVICE_NAMESPACE = "risk-analysis"
#: Request header that makes the analyzer fail on purpose (value ``analyzer``), as in Rust.
SIMULATE_FAILURE_HEADER = "x-simulate-failure"

log = logging.getLogger("analyzer_py")
tracer = trace.get_tracer("risk-analysis.analyzer-py")


def _service_version() -> str | None:
    """The workspace version from the repository's Cargo.toml, like the Rust services'
    ``CARGO_PKG_VERSION``; none when the app runs outside the repository."""
    cargo = Path(__file__).resolve().parents[3] / "Cargo.toml"
    try:
        with cargo.open("rb") as f:
            return tomllib.load(f)["workspace"]["package"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return None


def _exporters(variable: str, default: str) -> set[str]:
    value = os.environ.get(variable, "").strip() or default
    return {v.strip().lower() for v in value.split(",") if v.strip()}


def install_telemetry() -> tuple[object | None, object | None]:
    """Installs the global tracer and meter providers from the ``OTEL_*`` variables.

    ``service.name`` is fixed (``OTEL_SERVICE_NAME`` cannot change it, as in the Rust
    services); ``OTEL_RESOURCE_ATTRIBUTES`` adds to the resource. Sampler, batch delays,
    endpoint, headers and timeouts are read by the SDK and the exporter themselves
    (``OTEL_TRACES_SAMPLER``, ``OTEL_BSP_*``, ``OTEL_EXPORTER_OTLP_*``).
    """
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None, None
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    )
    if protocol.strip() not in ("", "http/protobuf"):
        log.warning("OTEL_EXPORTER_OTLP_PROTOCOL=%s: the Python analyzer exports http/protobuf only", protocol)

    attributes = {"service.name": SERVICE_NAME, "service.namespace": SERVICE_NAMESPACE}
    version = _service_version()
    if version:
        attributes["service.version"] = version
    resource = Resource.create(attributes)

    traces = _exporters("OTEL_TRACES_EXPORTER", "otlp")
    tracer_provider = TracerProvider(resource=resource)
    if "otlp" in traces:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if "console" in traces:
        tracer_provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(tracer_provider)

    meter_provider = None
    if "otlp" in _exporters("OTEL_METRICS_EXPORTER", "otlp" if "otlp" in traces else "none"):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        meter_provider = MeterProvider(
            resource=resource,
            metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())],
        )
        metrics.set_meter_provider(meter_provider)
    return tracer_provider, meter_provider


def _json(status: int, body: str) -> Response:
    return Response(body, status=status, mimetype="application/json")


def _error(status: int, message: str) -> Response:
    return _json(status, graph.dumps({"error": message}))


def run_analysis(subgraph: dict) -> dict:
    """The analysis in its own span, like the Rust analyzer's ``#[traced(err)] run_analysis``."""
    with tracer.start_as_current_span(
        "run_analysis",
        attributes={
            "app.accounts": len(subgraph["accounts"]),
            "app.transactions": len(subgraph["transactions"]),
        },
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            analysis = graph.analyze(subgraph)
        except graph.InvalidSubgraph as e:
            span.set_attribute("error.type", type(e).__name__)
            span.set_status(Status(StatusCode.ERROR, str(e)))
            raise
        log.info(
            "analysed subgraph root=%s accounts=%d communities=%d cycles=%d",
            analysis["root"],
            len(subgraph["accounts"]),
            len(analysis["communities"]),
            len(analysis["cycles"]),
        )
        return analysis


def create_app() -> Flask:
    """The analyzer's routes, instrumented with OpenTelemetry's Flask instrumentation."""
    app = Flask(__name__)

    @app.post("/analyze")
    def analyze() -> Response:
        if request.headers.get(SIMULATE_FAILURE_HEADER) == "analyzer":
            log.error("simulated analyzer failure")
            return _error(500, "simulated analyzer failure")
        try:
            subgraph = graph.parse_subgraph(request.get_data(cache=False))
        except graph.BadRequest as e:
            return _error(400, f"invalid subgraph: {e}")
        try:
            analysis = run_analysis(subgraph)
        except graph.InvalidSubgraph as e:
            return _error(422, str(e))
        return _json(200, graph.dumps(analysis))

    @app.get("/health")
    def health() -> Response:
        return Response("ok", mimetype="text/plain")

    FlaskInstrumentor().instrument_app(app)
    return app


def parse_listen(value: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port``."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


class _LogFormatter(logging.Formatter):
    """Log lines shaped like the Rust services' (UTC time, level, target, message), carrying the
    trace and span ids of the request they belong to."""

    converter = time.gmtime

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created)) + (
            f".{int(record.msecs):03d}Z"
        )

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            line += f" trace_id={ctx.trace_id:032x} span_id={ctx.span_id:016x}"
        return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="analyzer-py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 8081))
    parser.add_argument("--stop-on-stdin-eof", action="store_true")
    args = parser.parse_args(argv)

    # Log lines on standard output, like the Rust services (the demo silences it).
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_LogFormatter("%(asctime)s %(levelname)5s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    tracer_provider, meter_provider = install_telemetry()
    host, port = args.listen
    server = make_server(host, port, create_app(), threaded=True)
    log.info("analyzer-py listening on %s:%d", host, server.server_port)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    if args.stop_on_stdin_eof:

        def watch_stdin() -> None:
            while sys.stdin.buffer.read1(64):
                pass
            stop.set()

        threading.Thread(target=watch_stdin, name="stdin-eof", daemon=True).start()

    serving = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    serving.start()
    while not stop.wait(0.2):
        if not serving.is_alive():
            break
    server.shutdown()
    server.server_close()
    # Flush the last batch of spans and metrics before exiting.
    if tracer_provider is not None:
        tracer_provider.shutdown()
    if meter_provider is not None:
        meter_provider.shutdown(timeout_millis=5000)
    log.info("analyzer-py stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
