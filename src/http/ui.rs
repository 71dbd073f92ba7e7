//! The web viewer: `GET /` redirects to `ui/`, and `ui/` serves the viewer's
//! files, compiled into the binary (no separate web server, no CDN).
//!
//! The files are plain HTML, CSS and JavaScript modules in the
//! repository's `ui/` folder, with no build step (`ui/main.js` lists the
//! modules). Only the files listed here are served: `ui/package.json`,
//! `ui/tsconfig.json` and `ui/test/` are the viewer's type check and unit
//! tests (`scripts/test.sh` runs them), not part of the page. Each answer
//! carries an `ETag` (a digest of the file) and `Cache-Control: no-cache`,
//! so browsers revalidate cheaply and never run a stale viewer against a
//! newer gateway. The page gets a strict Content-Security-Policy (its own
//! scripts, styles and connections only; no inline code, no frames) and
//! sends no Referer, since a view's address may hold a token for a moment.

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

/// The page first (the tests read it as the page), then what it loads.
const ASSETS: &[Asset] = &[
    file(
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../ui/index.html"),
    ),
    file(
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../ui/app.css"),
    ),
    file(
        "icon.svg",
        "image/svg+xml",
        include_bytes!("../../ui/icon.svg"),
    ),
    file("main.js", JS, include_bytes!("../../ui/main.js")),
    file("view.js", JS, include_bytes!("../../ui/view.js")),
    file("tab.js", JS, include_bytes!("../../ui/tab.js")),
    file("api.js", JS, include_bytes!("../../ui/api.js")),
    file("sse.js", JS, include_bytes!("../../ui/sse.js")),
    file("dom.js", JS, include_bytes!("../../ui/dom.js")),
    file("line.js", JS, include_bytes!("../../ui/line.js")),
    file("list.js", JS, include_bytes!("../../ui/list.js")),
    file("status.js", JS, include_bytes!("../../ui/status.js")),
    file("stream.js", JS, include_bytes!("../../ui/stream.js")),
    file("download.js", JS, include_bytes!("../../ui/download.js")),
    file("detail.js", JS, include_bytes!("../../ui/detail.js")),
    file("admin.js", JS, include_bytes!("../../ui/admin.js")),
    file("ask.js", JS, include_bytes!("../../ui/ask.js")),
    file("channels.js", JS, include_bytes!("../../ui/channels.js")),
];

const JS: &str = "text/javascript; charset=utf-8";

const fn file(name: &'static str, content_type: &'static str, body: &'static [u8]) -> Asset {
    Asset {
        name,
        content_type,
        body,
    }
}

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
    fn every_asset_is_loaded_and_every_import_is_served() {
        let text = |a: &Asset| std::str::from_utf8(a.body).unwrap().to_owned();
        let page = text(&ASSETS[0]);
        let scripts: String = ASSETS
            .iter()
            .filter(|a| a.content_type == JS)
            .map(text)
            .collect();
        // Only `import … from "./x.js"` loads a module: a JSDoc type's
        // `import("./x.js")` is for the checker, not the browser.
        let imports: Vec<&str> = scripts
            .split("from \"./")
            .skip(1)
            .map(|import| import.split('"').next().unwrap())
            .collect();
        for a in &ASSETS[1..] {
            let quoted = format!("\"{}\"", a.name);
            assert!(
                page.contains(&quoted) || imports.contains(&a.name),
                "nothing loads {}",
                a.name
            );
        }
        for name in imports {
            assert!(
                ASSETS.iter().any(|a| a.name == name),
                "{name} is imported but not served"
            );
        }
        // No inline script or style: the CSP would block them.
        assert!(!page.contains("<script>") && !page.contains("style="));
        let tags: std::collections::HashSet<&str> = (0..ASSETS.len()).map(etag).collect();
        assert_eq!(tags.len(), ASSETS.len());
    }
}
