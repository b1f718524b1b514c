//! W3C trace context carried on objects, so one change followed through the
//! API server, controllers, scheduler and agent is one trace even though
//! kubectl sends no `traceparent` header and components only talk through
//! stored objects (the approach of upstream's API server tracing notes).
//!
//! Every helper is a no-op unless [`crate::otlp`] installed an exporter, so
//! clusters without tracing pay nothing and their objects carry no
//! annotation.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::Context;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The annotation that carries a W3C `traceparent` on stored objects.
pub const ANNOTATION: &str = "berth.dev/traceparent";

/// The request header clients may send (W3C Trace Context).
pub const TRACEPARENT_HEADER: &str = "traceparent";

static ENABLED: AtomicBool = AtomicBool::new(false);
static PAUSED: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported; callers skip creating spans when not.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed) && !PAUSED.load(Ordering::Relaxed)
}

/// Stops (or resumes) making spans while the exporter stays installed: an
/// exporter cannot be taken away once set for the process, and the API
/// benchmark compares servers with and without spans in turns.
pub fn pause(paused: bool) {
    PAUSED.store(paused, Ordering::Relaxed);
}

pub(crate) fn set_enabled() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Parses a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`) into a
/// remote span context; `None` for anything malformed or all-zero ids.
pub fn parse_traceparent(value: &str) -> Option<SpanContext> {
    let mut parts = value.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    // Version 00 has exactly four fields; later versions may append more.
    if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    if !hex(version, 2) || !hex(trace, 32) || !hex(span, 16) || !hex(flags, 2) {
        return None;
    }
    let trace_id = TraceId::from_hex(trace).ok()?;
    let span_id = SpanId::from_hex(span).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let context = SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags & TraceFlags::SAMPLED.to_u8()),
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

/// Writes a span context as a version-00 `traceparent`.
pub fn format_traceparent(context: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        context.trace_id(),
        context.span_id(),
        context.trace_flags().to_u8()
    )
}

/// The `traceparent` of the current `tracing` span, when tracing is on and
/// the span is exported.
pub fn current_traceparent() -> Option<String> {
    if !enabled() {
        return None;
    }
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context
        .is_valid()
        .then(|| format_traceparent(span_context))
}

/// Makes `span` a child of the context in `traceparent` (a request header or
/// an object's annotation); leaves it a root when absent or malformed.
pub fn set_parent(span: &tracing::Span, traceparent: Option<&str>) {
    if !enabled() {
        return;
    }
    if let Some(remote) = traceparent.and_then(parse_traceparent) {
        let _ = span.set_parent(Context::new().with_remote_span_context(remote));
    }
}

/// A span for `component` (e.g. `deployment-controller`) doing `operation`
/// to the object `name`, continuing the trace found in its annotations;
/// disabled (free) while tracing is off.
pub fn object_span(
    component: &'static str,
    operation: &str,
    name: &str,
    annotations: Option<&BTreeMap<String, String>>,
) -> tracing::Span {
    if !enabled() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        "object",
        otel.name = format!("{component} {operation}"),
        berth.component = component,
        k8s.object = name,
    );
    set_parent(&span, from_annotations(annotations));
    span
}

/// A kube client for `config` whose requests carry the current span's
/// `traceparent` header while tracing is on, so the API server's request
/// spans join the component's trace; a plain client otherwise.
pub fn client(config: kube::Config) -> Result<kube::Client, kube::Error> {
    let builder = kube::client::ClientBuilder::try_from(config)?;
    if !enabled() {
        return Ok(builder.build());
    }
    Ok(builder
        .with_layer(&tower::util::MapRequestLayer::new(with_traceparent))
        .build())
}

fn with_traceparent<B>(mut request: http::Request<B>) -> http::Request<B> {
    if let Some(value) = current_traceparent().and_then(|t| http::HeaderValue::from_str(&t).ok()) {
        request.headers_mut().insert(TRACEPARENT_HEADER, value);
    }
    request
}

/// The context annotation of an object's annotations.
pub fn from_annotations(annotations: Option<&BTreeMap<String, String>>) -> Option<&str> {
    annotations?.get(ANNOTATION).map(String::as_str)
}

/// Copies the current span's context onto an object the caller is about to
/// create, so the component acting on it continues this trace.
pub fn inject(annotations: &mut Option<BTreeMap<String, String>>) {
    if let Some(traceparent) = current_traceparent() {
        annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(ANNOTATION.to_owned(), traceparent);
    }
}

/// [`from_annotations`] for an object held as JSON (the API server's form).
pub fn from_json(object: &serde_json::Value) -> Option<&str> {
    object
        .pointer("/metadata/annotations")?
        .get(ANNOTATION)?
        .as_str()
}

/// Stamps the current span's context on a JSON object being created unless
/// it already carries one (a controller copied its own onto it).
pub fn inject_json_if_absent(object: &mut serde_json::Value) {
    if from_json(object).is_some() {
        return;
    }
    let Some(traceparent) = current_traceparent() else {
        return;
    };
    let Some(metadata) = object.get_mut("metadata").and_then(|m| m.as_object_mut()) else {
        return;
    };
    let annotations = metadata
        .entry("annotations")
        .or_insert_with(|| serde_json::Value::Object(Default::default()));
    if !annotations.is_object() {
        *annotations = serde_json::Value::Object(Default::default());
    }
    if let Some(map) = annotations.as_object_mut() {
        map.insert(
            ANNOTATION.to_owned(),
            serde_json::Value::String(traceparent),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_round_trips() {
        let context = parse_traceparent(VALID).unwrap();
        assert_eq!(
            context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(context.span_id().to_string(), "00f067aa0ba902b7");
        assert!(context.is_sampled());
        assert!(context.is_remote());
        assert_eq!(format_traceparent(&context), VALID);
    }

    #[test]
    fn malformed_traceparents_are_ignored() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad:?} parsed");
        }
        // A later version may append fields.
        assert!(parse_traceparent(&format!("01{}-more", &VALID[2..])).is_some());
    }

    #[test]
    fn annotations_are_read_from_typed_and_json_objects() {
        let annotations = BTreeMap::from([(ANNOTATION.to_owned(), VALID.to_owned())]);
        assert_eq!(from_annotations(Some(&annotations)), Some(VALID));
        assert_eq!(from_annotations(None), None);
        let object = serde_json::json!({"metadata": {"annotations": {ANNOTATION: VALID}}});
        assert_eq!(from_json(&object), Some(VALID));
        assert_eq!(from_json(&serde_json::json!({"metadata": {}})), None);
    }

    #[test]
    fn a_context_already_on_an_object_is_kept() {
        let mut object = serde_json::json!({"metadata": {"annotations": {ANNOTATION: VALID}}});
        let before = object.clone();
        inject_json_if_absent(&mut object);
        assert_eq!(object, before);
    }

    #[test]
    fn a_span_continues_the_annotation_and_hands_on_its_own_context() {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::layer::SubscriberExt;

        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        set_enabled();
        tracing::subscriber::with_default(subscriber, || {
            let found = BTreeMap::from([(ANNOTATION.to_owned(), VALID.to_owned())]);
            let span = object_span("test-controller", "sync", "web", Some(&found));
            let _entered = span.enter();

            let mut typed = None;
            inject(&mut typed);
            let written = parse_traceparent(from_annotations(typed.as_ref()).unwrap()).unwrap();
            let parent = parse_traceparent(VALID).unwrap();
            assert_eq!(written.trace_id(), parent.trace_id(), "same trace");
            assert_ne!(
                written.span_id(),
                parent.span_id(),
                "this span, not its parent"
            );
            assert!(written.is_sampled());

            let mut json = serde_json::json!({"metadata": {"name": "web-1"}});
            inject_json_if_absent(&mut json);
            assert_eq!(from_json(&json), from_annotations(typed.as_ref()));
        });
    }
}
