//! The registry in JetStream mode, driven through its mailbox: ids are
//! the stream's, a redelivered sequence is never fanned out twice, a
//! resumed session gets nothing at or before its resume point, and a
//! stream made again starts history over.

use super::*;
use crate::event::Level;
use crate::event::testing::new_event;

const EPOCH: u64 = crate::event::STREAM_EPOCH_BIT | 0x1234;

fn registry() -> Addr<Registry> {
    registry_with(Sharing::JetStream)
}

fn stored(epoch: u64, seqs: &[u64]) -> Stored {
    let now = crate::event::now_ms();
    Stored {
        epoch,
        events: seqs
            .iter()
            .map(|s| {
                (
                    *s,
                    new_event("logs:etl:ws1", Level::Info, &format!("m{s}"), now),
                )
            })
            .collect(),
    }
}

#[actix::test]
async fn stream_sequences_are_ids_and_a_redelivery_is_skipped() {
    let reg = registry();
    let live = subscribe(&reg, 1, None).await;
    reg.send(stored(EPOCH, &[5, 6])).await.unwrap().unwrap();
    // Read again after a reconnect: 6 is not delivered a second time.
    reg.send(stored(EPOCH, &[6, 7])).await.unwrap().unwrap();
    let (ids, _) = drain(&live);
    assert_eq!(ids, vec![id(EPOCH, 5), id(EPOCH, 6), id(EPOCH, 7)]);
    let stats = reg.send(GetStats).await.unwrap();
    assert_eq!((stats.last_seq, stats.history.events), (7, 3));
}

#[actix::test]
async fn a_resumed_session_gets_nothing_at_or_before_its_point() {
    let reg = registry();
    reg.send(stored(EPOCH, &[5, 6])).await.unwrap().unwrap();
    // A client that had read up to 9 elsewhere, while this node is still
    // reading older events from the stream.
    let ahead = subscribe(&reg, 1, Some(id(EPOCH, 9))).await;
    reg.send(stored(EPOCH, &[8, 9, 10])).await.unwrap().unwrap();
    assert_eq!(drain(&ahead), (vec![id(EPOCH, 10)], 0));
    // One that had 5: the replay, then live, each once, and no gap.
    let behind = subscribe(&reg, 2, Some(id(EPOCH, 5))).await;
    reg.send(stored(EPOCH, &[11])).await.unwrap().unwrap();
    let want: Vec<EventId> = [6, 8, 9, 10, 11].iter().map(|s| id(EPOCH, *s)).collect();
    assert_eq!(drain(&behind), (want, 0));
}

#[actix::test]
async fn before_the_first_event_a_stream_id_is_taken_at_its_word() {
    let reg = registry();
    // Nothing read yet: the epoch is unknown, and the id is believed.
    let early = subscribe(&reg, 1, Some(id(EPOCH, 6))).await;
    reg.send(stored(EPOCH, &[5, 6, 7])).await.unwrap().unwrap();
    assert_eq!(drain(&early), (vec![id(EPOCH, 7)], 0));
    // History starts at 5: a resume from before is told of the gap.
    let old = subscribe(&reg, 2, Some(id(EPOCH, 2))).await;
    let (ids, gaps) = drain(&old);
    assert_eq!(
        (ids.len(), gaps),
        (3, 1),
        "replay after a history_trimmed gap"
    );
    // An id of a node's own run (core mode) is foreign: unknown_epoch.
    let foreign = subscribe(&reg, 3, Some(id(7, 1))).await;
    assert_eq!(drain(&foreign).1, 1);
}

#[actix::test]
async fn a_stream_made_again_starts_history_over() {
    let reg = registry();
    let live = subscribe(&reg, 1, None).await;
    reg.send(stored(EPOCH, &[40, 41])).await.unwrap().unwrap();
    let again = EPOCH + 1;
    reg.send(stored(again, &[1, 2])).await.unwrap().unwrap();
    let (ids, _) = drain(&live);
    assert_eq!(
        ids,
        vec![id(EPOCH, 40), id(EPOCH, 41), id(again, 1), id(again, 2)]
    );
    let stats = reg.send(GetStats).await.unwrap();
    assert_eq!((stats.last_seq, stats.history.events), (2, 2));
}
