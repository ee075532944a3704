//! Time as lbrecon writes it: RFC 3339, to the second, in UTC.

/// The current time in RFC 3339, to the second.
pub fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or_default()
}

/// Unix seconds as RFC 3339 (UTC), `None` when out of range.
pub fn rfc3339(seconds: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}
