//! The ids of a remembered answer, as runs of consecutive ids: one run
//! for a batch one gateway numbered alone.

use crate::event::EventId;

/// `count` ids from `first` on, one after the other in the same epoch.
#[derive(Debug, Clone, Copy)]
pub(super) struct Run {
    pub(super) first: EventId,
    pub(super) count: u32,
}

pub(super) fn to_runs(ids: &[EventId]) -> Box<[Run]> {
    let mut runs: Vec<Run> = Vec::new();
    for id in ids {
        match runs.last_mut() {
            Some(r)
                if r.first.epoch == id.epoch
                    && r.count < u32::MAX
                    && r.first.seq.checked_add(u64::from(r.count)) == Some(id.seq) =>
            {
                r.count += 1;
            }
            _ => runs.push(Run {
                first: *id,
                count: 1,
            }),
        }
    }
    runs.into_boxed_slice()
}

pub(super) fn from_runs(runs: &[Run]) -> Vec<EventId> {
    runs.iter()
        .flat_map(|r| {
            (0..u64::from(r.count)).map(move |i| EventId {
                epoch: r.first.epoch,
                seq: r.first.seq + i,
            })
        })
        .collect()
}
