//! Sleeping until a deadline that may not be set, for `select!` branches: without one it
//! never fires.

/// Resolves at `at` (a `std` or a tokio instant); pending forever when `at` is `None`.
pub async fn sleep_until(at: Option<impl Into<tokio::time::Instant>>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
