//! The publish rates a request spends: its service's bytes per second
//! (`PUBLISH_BYTES_PER_SEC`) and events per second
//! (`PUBLISH_RATE_PER_SEC`), and the refusals they give, counted.

use super::PublishError;
use crate::limits::Limited;
use crate::metrics::label::limit;
use crate::state::AppState;

/// The refusal of a byte-rate check for a body of `size` bytes, counted.
pub(super) fn byte_refusal(state: &AppState, limited: &Limited, size: usize) -> PublishError {
    if let Some(burst) = limited.over_burst {
        return PublishError::BodyExceedsBurst { size, burst };
    }
    state
        .metrics
        .rate_limited
        .with_label_values(&[limit::PUBLISH_BYTES])
        .inc();
    PublishError::BytesRateLimited {
        retry_after_secs: limited.retry_after_secs(),
    }
}

/// Spends `bytes` of `service`'s byte rate, or refuses.
pub fn spend_bytes(state: &AppState, service: &str, bytes: usize) -> Result<(), PublishError> {
    state
        .limits
        .check_publish_bytes(service, bytes)
        .map_err(|limited| byte_refusal(state, &limited, bytes))
}

/// Spends `count` events of `service`'s event rate, or refuses.
pub fn spend_events(state: &AppState, service: &str, count: usize) -> Result<(), PublishError> {
    let Err(limited) = state.limits.check_publish(service, count) else {
        return Ok(());
    };
    if let Some(burst) = limited.over_burst {
        return Err(PublishError::BatchExceedsBurst { count, burst });
    }
    state
        .metrics
        .rate_limited
        .with_label_values(&[limit::PUBLISH])
        .inc();
    Err(PublishError::RateLimited {
        retry_after_secs: limited.retry_after_secs(),
    })
}
