//! Tracing setup. Spans carry job and stage names and sizes, never transcript text (PHI).

pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FHIRSCRIBE_LOG")
        .unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
