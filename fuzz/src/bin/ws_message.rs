//! What a WebSocket client sends: its text frames as subscribe and
//! unsubscribe messages, and the header of any frame as the gateway reads
//! it to refuse oversized frames before their payload. A refusal never
//! quotes more than a short excerpt of the input.

use loggate::session::ws_inbound::{ClientMessage, declared_payload_len, decode_client_message};

fn main() {
    loggate_fuzz::fuzz!(|data: &[u8]| {
        match decode_client_message(data) {
            Ok(ClientMessage::Subscribe { channels } | ClientMessage::Unsubscribe { channels }) => {
                let text = std::str::from_utf8(data).expect("accepted JSON is UTF-8");
                assert!(text.contains("channels"));
                assert!(channels.len() <= data.len());
            }
            Err(e) => {
                let message = e.to_string();
                assert!(
                    message.len() < 200,
                    "{} bytes: {message:.200}",
                    message.len()
                );
            }
        }
        // The declared length is read from the header alone: two bytes,
        // then 2 or 8 more for the 16- and 64-bit forms.
        if let Some(len) = declared_payload_len(data) {
            let needed = match data[1] & 0x7F {
                126 => 4,
                127 => 10,
                n => {
                    assert_eq!(len, u64::from(n));
                    2
                }
            };
            assert!(data.len() >= needed);
        } else {
            assert!(
                data.len() < 2
                    || (data[1] & 0x7F == 126 && data.len() < 4)
                    || (data[1] & 0x7F == 127 && data.len() < 10)
            );
        }
    });
}
