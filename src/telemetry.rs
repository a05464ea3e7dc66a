//! Logging: human-readable on a terminal, JSON lines otherwise. Logs go to stderr so stdout
//! carries only results. The JSON is what Cloud Logging reads natively: `severity`, `message`,
//! `time`, the event's fields, and `logging.googleapis.com/trace` when the event happens inside a
//! request span that carries a `trace` field (see [`cloud_trace`]).

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

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if json {
        builder
            .fmt_fields(JsonFields::new())
            .event_format(CloudLogging)
            .try_init()
    } else {
        builder.compact().try_init()
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
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
