//! `[[nats.ingest]]` rules: a NATS subject and the channel template its
//! messages are published on. Plain settings, checked at start; the NATS
//! bridge applies them (`nats::rules`).

use serde::Deserialize;

/// One `[[nats.ingest]]` rule from the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestRule {
    /// The NATS subject to subscribe to, e.g. `app.*.logs.>`.
    pub subject: String,
    /// The channel template, e.g. `logs:{2}:{1}`.
    pub channel: String,
}

impl IngestRule {
    /// Checks the template's placeholders; the channel itself can only be
    /// checked per message.
    pub fn validate(&self) -> Result<(), String> {
        if self.subject.is_empty() || self.subject.contains(' ') {
            return Err(format!("subject {:?} is not a NATS subject", self.subject));
        }
        let mut rest = self.channel.as_str();
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("channel {:?} has an unclosed {{", self.channel))?;
            let n = &rest[open + 1..open + close];
            if n.parse::<usize>().map_or(true, |n| n == 0) {
                return Err(format!(
                    "channel {:?}: {{{n}}} is not {{1}}, {{2}}, …",
                    self.channel
                ));
            }
            rest = &rest[open + close + 1..];
        }
        if !self.channel.starts_with("logs:") {
            return Err(format!("channel {:?} must start with logs:", self.channel));
        }
        Ok(())
    }

    /// The channel name for a message on `subject`; `None` if the template
    /// asks for a token the subject does not have.
    pub fn channel_for(&self, subject: &str) -> Option<String> {
        let tokens: Vec<&str> = subject.split('.').collect();
        let mut out = String::with_capacity(self.channel.len() + subject.len());
        let mut rest = self.channel.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let close = open + rest[open..].find('}')?;
            let n: usize = rest[open + 1..close].parse().ok()?;
            out.push_str(tokens.get(n.checked_sub(1)?)?);
            rest = &rest[close + 1..];
        }
        out.push_str(rest);
        Some(out)
    }
}
