//! Event ids as clients send them back (`Last-Event-ID`, `?lastEventId=`):
//! an accepted id prints and parses back to itself, and `resume_point`
//! never panics on any header text.

use loggate::event::EventId;
use loggate::session::resume_point;

fn main() {
    loggate_fuzz::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let parsed = text.parse::<EventId>();
        if let Ok(id) = parsed {
            assert_eq!(id.to_string().parse::<EventId>(), Ok(id), "{text:?}");
        }
        match resume_point(Some(text), None) {
            Ok(None) => assert!(text.trim().is_empty(), "{text:?}"),
            Ok(Some(id)) => assert_eq!(Ok(id), parsed, "{text:?}"),
            Err(e) => assert!(e.to_string().len() < 1024),
        }
        assert_eq!(
            resume_point(None, Some(text)).ok(),
            resume_point(Some(text), None).ok()
        );
    });
}
