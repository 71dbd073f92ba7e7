//! The web viewer: `GET /` redirects to `ui/`, and `ui/` serves the viewer's
//! files, compiled into the binary (no separate web server, no CDN).
//!
//! The files are plain HTML, CSS and JavaScript in the repository's `ui/`
//! folder, with no build step. Each answer carries an `ETag` (a digest of
//! the file) and `Cache-Control: no-cache`, so browsers revalidate cheaply
//! and never run a stale viewer against a newer gateway. The page gets a
//! strict Content-Security-Policy (its own scripts, styles and connections
//! only; no inline code, no frames) and sends no Referer, since a view's
//! address may hold a token for a moment.

use std::sync::OnceLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;

/// One file of the viewer.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../../ui/index.html"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../ui/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../ui/app.css"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../ui/icon.svg"),
    },
];

/// Everything the page may load or connect to is its own; nothing inline.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// `"<first 16 hex digits of the SHA-256>"`, per asset, computed once.
fn etag(index: usize) -> &'static str {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    &TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| format!("\"{}\"", &hex::encode(crate::digest::sha256(a.body))[..16]))
            .collect()
    })[index]
}

/// `GET /` and `GET /ui`: to the viewer. Relative, so a path prefix in
/// front of the gateway is kept.
pub async fn to_viewer() -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, "ui/"))
        .finish()
}

/// `GET /ui/{file}` (`/ui/` is `index.html`).
pub async fn asset(req: HttpRequest, file: Option<web::Path<String>>) -> HttpResponse {
    let name = file.as_deref().map_or("index.html", String::as_str);
    let Some(index) = ASSETS.iter().position(|a| a.name == name) else {
        return actix_web::ResponseError::error_response(&ApiError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "the viewer has no file {:?}",
                name.chars().take(64).collect::<String>()
            ),
        ));
    };
    let asset = &ASSETS[index];
    let tag = etag(index);
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut res = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::ETAG, tag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    if asset.name == "index.html" {
        res.insert_header((header::CONTENT_SECURITY_POLICY, CSP))
            .insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")));
    }
    if fresh {
        return res.finish();
    }
    res.content_type(asset.content_type).body(asset.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_page_names_is_served() {
        let page = std::str::from_utf8(ASSETS[0].body).unwrap();
        for a in &ASSETS[1..] {
            assert!(page.contains(a.name), "index.html does not load {}", a.name);
        }
        // No inline script or style: the CSP would block them.
        assert!(!page.contains("<script>") && !page.contains("style="));
        let tags: std::collections::HashSet<&str> = (0..ASSETS.len()).map(etag).collect();
        assert_eq!(tags.len(), ASSETS.len());
    }
}
