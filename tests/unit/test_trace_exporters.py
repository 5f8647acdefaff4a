"""OTEL_TRACES_EXPORTER picks where the service's spans go (otlp, console, none), the traces file of an
embedded run is written whatever it says, and a name the service does not know stops it at start-up."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from service.otlp_file import OtlpJsonLinesExporter
from service.settings import Settings
from service.telemetry import TracingConfigError, setup_tracing, span_exporters

OTEL_VARIABLES = ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                  "OTEL_SDK_DISABLED")
REQUIRED_SETTINGS = {"GENCHAOS_DATABASE_URL": "postgresql://genchaos@127.0.0.1:1/genchaos",
                     "GENCHAOS_SUPABASE_URL": "http://127.0.0.1:1", "GENCHAOS_SUPABASE_SERVICE_KEY": "key",
                     "GENCHAOS_SUPABASE_JWT_SECRET": "s" * 32, "GENCHAOS_SUPABASE_JWT_ISSUER": "issuer"}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def settings(traces_file: str | None = None) -> Settings:
    return Settings(database_url="postgresql://genchaos@127.0.0.1:1/genchaos", supabase_url="http://127.0.0.1:1",
                    supabase_service_key="key", supabase_jwt_secret="s" * 32, supabase_jwt_issuer="issuer",
                    traces_file=traces_file)


def kinds(exporters) -> list[type]:
    return [type(exporter) for exporter in exporters]


def test_unset_exports_nothing_without_an_endpoint_or_a_file():
    assert span_exporters(settings()) == []


def test_unset_with_an_endpoint_exports_over_otlp_as_before(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    exporters = span_exporters(settings())
    assert kinds(exporters) == [OTLPSpanExporter]
    assert exporters[0]._endpoint == "http://collector:4318/v1/traces"


def test_unset_with_a_traces_file_writes_the_file_only(tmp_path):
    assert kinds(span_exporters(settings(str(tmp_path / "traces.jsonl")))) == [OtlpJsonLinesExporter]


def test_otlp_exports_to_the_configured_endpoint_and_keeps_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/v1/traces")
    exporters = span_exporters(settings(str(tmp_path / "traces.jsonl")))
    assert kinds(exporters) == [OTLPSpanExporter, OtlpJsonLinesExporter]
    assert exporters[0]._endpoint == "http://collector:4318/v1/traces"


def test_console_prints_spans_and_ignores_an_endpoint(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert kinds(span_exporters(settings())) == [ConsoleSpanExporter]


def test_several_names_give_several_exporters(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", " OTLP, console ")
    assert kinds(span_exporters(settings())) == [OTLPSpanExporter, ConsoleSpanExporter]


def test_none_turns_off_otlp_even_with_an_endpoint_but_keeps_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert span_exporters(settings()) == []
    assert kinds(span_exporters(settings(str(tmp_path / "traces.jsonl")))) == [OtlpJsonLinesExporter]


@pytest.mark.parametrize(("value", "message"), [
    ("jaeger", "unknown exporter 'jaeger'; choose from otlp, console, none"),
    ("otlp,zipkin", "unknown exporter 'zipkin'"),
    ("none,otlp", "'none' cannot be combined"),
])
def test_a_choice_the_service_cannot_honour_is_refused(monkeypatch, value, message):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", value)
    with pytest.raises(TracingConfigError, match=message):
        span_exporters(settings())


def test_a_wrong_choice_is_refused_even_with_tracing_disabled(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "jaeger")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    with pytest.raises(TracingConfigError):
        setup_tracing(settings())


def test_the_service_exits_2_naming_the_variable_when_the_exporter_is_unknown():
    environment = {**os.environ, **REQUIRED_SETTINGS, "OTEL_TRACES_EXPORTER": "jaeger"}
    result = subprocess.run([sys.executable, "-m", "service", "--port", "1"], env=environment,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "OTEL_TRACES_EXPORTER: unknown exporter 'jaeger'" in result.stderr
    assert "Traceback" not in result.stderr
