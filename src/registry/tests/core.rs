//! The path every mode shares: a publish is numbered, fanned out once to
//! each matching session and kept; a resume replays what was missed and
//! then goes live with nothing lost or repeated; local events (and only
//! they) are offered to the cluster; a cluster loss is told to every
//! session and kept for those away; a shutdown tells every session and
//! refuses new work.

use super::*;
use crate::event::testing::new_event;
use crate::event::{Level, NewEvent};
use crate::registry::outbound::ClusterQueue;

/// The epoch of the registry's own ids (`registry_with` starts it at 7).
const RUN: u64 = 7;

fn events(channel: &str, n: usize) -> Vec<NewEvent> {
    let now = crate::event::now_ms();
    (0..n)
        .map(|i| new_event(channel, Level::Info, &format!("m{i}"), now))
        .collect()
}

async fn publish(reg: &Addr<Registry>, channel: &str, n: usize, origin: Origin) -> Vec<EventId> {
    reg.send(Publish {
        events: events(channel, n),
        origin,
        stored: None,
    })
    .await
    .unwrap()
    .unwrap()
}

/// (event ids, control frames as text, whether the stream ended).
fn frames(outbox: &Outbox) -> (Vec<EventId>, Vec<String>, bool) {
    let mut cx = TaskContext::from_waker(Waker::noop());
    let (mut ids, mut controls) = (Vec::new(), Vec::new());
    loop {
        match outbox.poll_batch(&mut cx, usize::MAX) {
            Poll::Ready(Drained::Batch(b)) => {
                for item in b.items {
                    match item {
                        Item::Event(e) => ids.push(e.id),
                        Item::Control(c) => controls.push(String::from_utf8_lossy(&c).into()),
                    }
                }
            }
            Poll::Ready(Drained::End | Drained::Killed) => return (ids, controls, true),
            Poll::Pending => return (ids, controls, false),
        }
    }
}

fn seqs(from: u64, to: u64) -> Vec<EventId> {
    (from..=to).map(|s| id(RUN, s)).collect()
}

#[actix::test]
async fn a_publish_is_numbered_and_reaches_each_matching_session_once() {
    let reg = registry_with(Sharing::Alone);
    let ob = outbox();
    let patterns =
        ["logs:etl", "logs:*", "logs:etl:ws1"].map(|p| ChannelPattern::parse(p).unwrap());
    reg.send(Subscribe {
        session: SessionId(1),
        outbox: Arc::clone(&ob),
        patterns: patterns.to_vec(),
        resume: None,
    })
    .await
    .unwrap()
    .unwrap();
    let elsewhere = subscribe(&reg, 2, None).await;
    assert_eq!(
        publish(&reg, "logs:etl:ws1", 2, Origin::Local).await,
        seqs(1, 2)
    );
    assert_eq!(
        publish(&reg, "logs:faas", 1, Origin::Cluster).await,
        seqs(3, 3)
    );
    // Three overlapping patterns, one delivery each; `logs:etl` alone
    // does not match `logs:faas`.
    assert_eq!(frames(&ob), (seqs(1, 3), vec![], false));
    assert_eq!(drain(&elsewhere), (seqs(1, 2), 0));
    let stats = reg.send(GetStats).await.unwrap();
    assert_eq!((stats.sessions, stats.subscriptions), (2, 4));
    assert_eq!((stats.last_seq, stats.history.events), (3, 3));
    // A closed session is forgotten with its subscriptions.
    reg.send(SessionClosed {
        session: SessionId(1),
    })
    .await
    .unwrap();
    let stats = reg.send(GetStats).await.unwrap();
    assert_eq!((stats.sessions, stats.subscriptions), (1, 1));
}

#[actix::test]
async fn a_resume_replays_what_was_missed_then_goes_live() {
    let reg = registry_with(Sharing::Alone);
    publish(&reg, "logs:etl:ws1", 3, Origin::Local).await;
    publish(&reg, "logs:faas", 1, Origin::Local).await;
    let back = subscribe(&reg, 1, Some(id(RUN, 1))).await;
    publish(&reg, "logs:etl", 1, Origin::Local).await;
    // 2 and 3 from history, 4 not its channel, 5 live: no gap, no repeat.
    let want: Vec<EventId> = [2, 3, 5].iter().map(|s| id(RUN, *s)).collect();
    assert_eq!(drain(&back), (want, 0));
    // An id of another run says nothing about this one's history: all of
    // it is replayed after an `unknown_epoch` gap.
    let stranger = subscribe(&reg, 2, Some(id(RUN + 1, 2))).await;
    let (ids, controls, _) = frames(&stranger);
    assert_eq!(
        ids,
        [1, 2, 3, 5].iter().map(|s| id(RUN, *s)).collect::<Vec<_>>()
    );
    assert_eq!(controls.len(), 1);
    assert!(controls[0].contains("unknown_epoch"), "{}", controls[0]);
}

#[actix::test]
async fn local_events_and_only_they_are_offered_to_the_cluster() {
    let metrics = Arc::new(Metrics::new(["etl"], &[]));
    let (queue, mut outbound) = ClusterQueue::new(16, metrics);
    let reg = registry_with(Sharing::Core(queue));
    publish(&reg, "logs:etl", 2, Origin::Local).await;
    publish(&reg, "logs:etl", 3, Origin::Cluster).await;
    publish(&reg, "logs:etl:ws1", 1, Origin::Local).await;
    let mut shared = Vec::new();
    assert_eq!(outbound.recv_many(&mut shared, 16).await, 3);
    let numbers: Vec<u64> = shared.iter().map(|e| e.seq).collect();
    assert_eq!(numbers, vec![1, 2, 3], "the node's own cluster sequence");
    assert_eq!(shared[2].channel.as_str(), "logs:etl:ws1");
    assert_eq!(outbound.last_offered(), 3);
}

#[actix::test]
async fn a_cluster_loss_is_told_to_every_session_and_kept_for_resumes() {
    let reg = registry_with(Sharing::Alone);
    publish(&reg, "logs:etl", 2, Origin::Cluster).await;
    let (a, b) = (
        subscribe(&reg, 1, None).await,
        subscribe(&reg, 2, None).await,
    );
    reg.send(ClusterLoss {
        losses: vec![("node-b".into(), 5), ("node-c".into(), 1)],
    })
    .await
    .unwrap();
    publish(&reg, "logs:etl", 1, Origin::Cluster).await;
    for ob in [&a, &b] {
        let (ids, controls, _) = frames(ob);
        assert_eq!(ids, seqs(3, 3));
        assert_eq!(controls.len(), 2, "{controls:?}");
        assert!(controls[0].contains("cluster_loss") && controls[0].contains("node-b"));
        assert!(controls[1].contains("node-c"), "{}", controls[1]);
    }
    // A session away at the time is told when it resumes from before.
    let away = subscribe(&reg, 3, Some(id(RUN, 1))).await;
    let (ids, controls, _) = frames(&away);
    assert_eq!(ids, seqs(2, 3));
    assert_eq!(controls.len(), 2, "{controls:?}");
    // The loss came after 2: a resume from 2 is told, one from after the
    // first event past it is not.
    let at = subscribe(&reg, 4, Some(id(RUN, 2))).await;
    assert_eq!(drain(&at), (seqs(3, 3), 2));
    let after = subscribe(&reg, 5, Some(id(RUN, 3))).await;
    assert_eq!(drain(&after), (vec![], 0));
}

#[actix::test]
async fn a_shutdown_tells_every_session_and_refuses_new_work() {
    let reg = registry_with(Sharing::Alone);
    let (a, b) = (
        subscribe(&reg, 1, None).await,
        subscribe(&reg, 2, None).await,
    );
    publish(&reg, "logs:etl", 1, Origin::Local).await;
    assert_eq!(reg.send(Shutdown).await.unwrap(), 2);
    for ob in [&a, &b] {
        let (ids, controls, ended) = frames(ob);
        // What was queued first, then the notice as the last frame.
        assert_eq!((ids, controls.len(), ended), (seqs(1, 1), 1, true));
    }
    let refused = reg
        .send(Publish {
            events: events("logs:etl", 1),
            origin: Origin::Local,
            stored: None,
        })
        .await
        .unwrap();
    assert_eq!(refused, Err(RegistryClosed));
    let late = reg
        .send(Subscribe {
            session: SessionId(3),
            outbox: outbox(),
            patterns: vec![ChannelPattern::parse("logs:etl").unwrap()],
            resume: None,
        })
        .await
        .unwrap();
    assert_eq!(late, Err(RegistryClosed));
}
