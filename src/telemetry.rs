//! Logging: human-readable on a terminal (coloured there only), JSON lines otherwise. Logs go
//! to stderr so stdout carries only results. The JSON is what Cloud Logging reads natively:
//! `severity`, `message`, `time`, the event's fields, and `logging.googleapis.com/trace` when
//! the event happens inside a request span that carries a `trace` field (see [`cloud_trace`]).

use crate::config::LogFormat;
use serde_json::{Map, Value};
use std::fmt;
use std::io::IsTerminal;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// What [`init`] set up; [`Telemetry::shutdown`] sends the spans still buffered.
pub struct Telemetry {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
    /// Why OTLP export is off although it was asked for.
    pub otlp_error: Option<String>,
}

impl Telemetry {
    /// Whether spans are exported over OTLP.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes and stops the span exporter (it blocks: the exporter has its own thread).
    pub fn shutdown(self) {
        if let Some(p) = self.provider {
            if let Err(e) = p.shutdown() {
                eprintln!("warning: exporting the last spans failed: {e}");
            }
        }
    }
}

/// The OTLP span exporter when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set:
/// HTTP with protobuf, the standard `OTEL_*` variables (headers, timeout, service name), spans
/// sent in batches from the exporter's own thread.
fn otlp_provider() -> Option<Result<opentelemetry_sdk::trace::SdkTracerProvider, String>> {
    let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.trim().is_empty());
    if !set("OTEL_EXPORTER_OTLP_ENDPOINT") && !set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        return None;
    }
    use opentelemetry_otlp::WithExportConfig;
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .build()
    {
        Ok(e) => e,
        Err(e) => return Some(Err(format!("OTLP trace export is off: {e}"))),
    };
    let mut resource = opentelemetry_sdk::Resource::builder();
    if !set("OTEL_SERVICE_NAME") {
        resource = resource.with_service_name("ghstats");
    }
    let resource = resource
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Some(Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build()))
}

/// Logs to stderr (a `RUST_LOG` filter, default `info`), and spans over OTLP when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set: a span per job, per repository and per GitHub request,
/// whatever `RUST_LOG` says.
pub fn init(format: LogFormat) -> Telemetry {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let logs = if json {
        tracing_subscriber::fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(CloudLogging)
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed()
    } else {
        // Colour only for a terminal: `LOG_FORMAT=text 2>run.log` must not fill the file with
        // escape codes.
        tracing_subscriber::fmt::layer()
            .compact()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed()
    };
    let (provider, otlp_error) = match otlp_provider() {
        None => (None, None),
        Some(Ok(p)) => (Some(p), None),
        Some(Err(e)) => (None, Some(e)),
    };
    let traces = provider.as_ref().map(|p| {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("ghstats"))
            .with_filter(
                tracing_subscriber::filter::Targets::new().with_target("ghstats", Level::INFO),
            )
    });
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init();
    Telemetry {
        provider,
        otlp_error,
    }
}

/// Makes `span` a child of the W3C `traceparent` a request carries, so a job's spans join the
/// caller's trace (Cloud Run and Cloud Scheduler send one).
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    struct Extract<'a>(&'a http::HeaderMap);
    impl opentelemetry::propagation::Extractor for Extract<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }
        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(|k| k.as_str()).collect()
        }
    }
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Extract(headers)));
    let _ = span.set_parent(parent);
}

/// The Cloud Logging trace name for a request's `X-Cloud-Trace-Context` (`TRACE_ID/SPAN;o=1`)
/// or W3C `traceparent` (`00-TRACE_ID-SPAN-01`) header, in `project`.
pub fn cloud_trace(
    project: &str,
    cloud: Option<&str>,
    traceparent: Option<&str>,
) -> Option<String> {
    let id = cloud
        .and_then(|h| h.split('/').next())
        .or_else(|| traceparent.and_then(|h| h.split('-').nth(1)))
        .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))?;
    Some(format!(
        "projects/{project}/traces/{}",
        id.to_ascii_lowercase()
    ))
}

struct CloudLogging;

struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(
            field.name().to_string(),
            Value::String(format!("{value:?}")),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_string(), Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
}

fn severity(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        _ => "DEBUG",
    }
}

impl<S, N> FormatEvent<S, N> for CloudLogging
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields(Map::new());
        event.record(&mut fields);
        let mut out = Map::new();
        out.insert(
            "severity".into(),
            Value::from(severity(event.metadata().level())),
        );
        out.insert(
            "message".into(),
            fields.0.remove("message").unwrap_or(Value::from("")),
        );
        out.insert(
            "time".into(),
            Value::from(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        );
        out.insert("target".into(), Value::from(event.metadata().target()));
        // Fields of the enclosing spans (outermost first), the event's own last.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                if let Some(f) = ext.get::<FormattedFields<N>>() {
                    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(f.as_str()) {
                        for (k, v) in m {
                            if k == "trace" {
                                out.insert("logging.googleapis.com/trace".into(), v);
                            } else {
                                out.insert(k, v);
                            }
                        }
                    }
                }
            }
        }
        out.extend(fields.0);
        let line = serde_json::to_string(&Value::Object(out)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{line}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_headers_become_cloud_logging_trace_names() {
        assert_eq!(
            cloud_trace("p", Some("105445aa7843bc8bf206b12000100000/1;o=1"), None).as_deref(),
            Some("projects/p/traces/105445aa7843bc8bf206b12000100000")
        );
        assert_eq!(
            cloud_trace(
                "p",
                None,
                Some("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01")
            )
            .as_deref(),
            Some("projects/p/traces/4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(cloud_trace("p", Some("nonsense"), None), None);
        assert_eq!(cloud_trace("p", None, None), None);
    }
}
