//! Tracing setup. Spans carry job and stage names and sizes, never transcript text (PHI).

pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FHIRSCRIBE_LOG")
        .unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// JSON lines for the service (one object per event, with the fields of the enclosing spans:
/// `request_id`, `job`), for log shippers. Level from `FHIRSCRIBE_LOG` (default info).
pub fn init_json() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FHIRSCRIBE_LOG")
        .unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
