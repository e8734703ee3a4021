//! The token store's warnings on stderr: a cache file that was corrupt, a disk that is
//! full or read-only. The library says so through `tracing`; without this nothing would
//! show. Its store warnings hold no secret: operation and reason only.

use std::fmt::{self, Write as _};

use tracing::{
    Event, Level, Metadata, Subscriber,
    field::{Field, Visit},
    span,
};

/// Where the store's events come from.
const STORE_TARGET: &str = "vipps_access_token::store";

/// Prints the store's warnings on stderr for the rest of the process.
pub fn show() {
    // Fails only if a subscriber is set already: then that one reports.
    let _ = tracing::subscriber::set_global_default(StoreWarnings);
}

/// A subscriber for warnings of the store, one line each.
struct StoreWarnings;

impl Subscriber for StoreWarnings {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_event()
            && *metadata.level() <= Level::WARN
            && metadata.target().starts_with(STORE_TARGET)
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = Line::default();
        event.record(&mut line);
        crate::output::note(format_args!("warning: {}{}", line.message, line.fields));
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

/// An event's message, then its fields as `(name: value, ...)`.
#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
            return;
        }
        let separator = if self.fields.is_empty() { " (" } else { ", " };
        self.fields.truncate(self.fields.len().saturating_sub(1));
        let _ = write!(self.fields, "{separator}{}: {value:?})", field.name());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &format_args!("{value}"));
    }
}
