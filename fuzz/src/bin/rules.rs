//! `[[nats.ingest]]` rules: the first line of the input is the NATS
//! subject, the rest the payload, tried against a fixed rule set. An
//! accepted message becomes a well-formed event on the channel the rule's
//! template names for that subject.

use loggate::config::IngestRule;
use loggate::nats::rules::decode_rule;
use loggate_fuzz::{LIMITS, check_event, received, split_line};

const RULES: &[(&str, &str)] = &[
    ("app.*.logs", "logs:{2}:prod"),
    ("app.>", "logs:{2}:{3}:{4}"),
    ("k8s.>", "logs:{1}:{3}"),
    ("svc.>", "logs:fixed"),
];

fn main() {
    let rules: Vec<IngestRule> = RULES
        .iter()
        .map(|(subject, channel)| IngestRule {
            subject: (*subject).into(),
            channel: (*channel).into(),
        })
        .collect();
    assert!(rules.iter().all(|r| r.validate().is_ok()));
    loggate_fuzz::fuzz!(|data: &[u8]| {
        let (subject, payload) = split_line(data);
        let Ok(subject) = std::str::from_utf8(subject) else {
            return;
        };
        for rule in &rules {
            if let Ok(event) =
                decode_rule(rule, subject, payload, &received(), LIMITS.max_event_bytes)
            {
                let channel = rule.channel_for(subject).expect("the event has a channel");
                assert_eq!(check_event(event)["channel"], channel.as_str());
            }
        }
    });
}
