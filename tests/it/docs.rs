//! The documentation: the README is the front door and `docs/` the
//! reference, linked to each other by relative paths and `#anchors`. These
//! tests hold every such link to a file that exists and a heading it has,
//! every reference page to a link from both indexes, and every environment
//! name the gateway reads to a mention in the configuration reference, so a
//! moved section or a renamed heading cannot leave a reader at a dead end.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use loggate::config::{CLI_ENV_NAMES, ENV_NAMES};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The Markdown files a reader is sent through: the top level's
/// (README.md, ARCHITECTURE.md) and docs/'s.
fn markdown_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [root(), root().join("docs")] {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("dir entry").path();
            if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The pages of docs/ other than its index.
fn reference_pages() -> Vec<PathBuf> {
    markdown_files()
        .into_iter()
        .filter(|p| p.parent() == Some(&root().join("docs")))
        .filter(|p| p.file_name().is_some_and(|n| n != "README.md"))
        .collect()
}

/// Each line of `text` as a reader's prose: `None` inside fenced code
/// blocks (a `# comment` there is no heading, a `](` no link), and inline
/// code spans removed. A span may run over lines but not past a blank line
/// or a fence, as in CommonMark, so one stray backtick cannot hide the rest
/// of a document.
fn prose(text: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    let mut fenced = false;
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            in_code = false;
            out.push(None);
            continue;
        }
        if fenced {
            out.push(None);
            continue;
        }
        if line.trim().is_empty() {
            in_code = false;
        }
        let mut kept = String::new();
        for c in line.chars() {
            if c == '`' {
                in_code = !in_code;
            } else if !in_code {
                kept.push(c);
            }
        }
        out.push(Some(kept));
    }
    out
}

/// The anchor GitHub gives a heading: lower case, each space a `-`, and
/// every character but letters, digits, `-` and `_` dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a document: its headings' slugs, a repeated one with
/// `-1`, `-2`… as GitHub numbers them.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    // The raw line, not the prose: code in a heading is part of its anchor.
    for (line, prose) in text.lines().zip(prose(text)) {
        if prose.is_none() {
            continue;
        }
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(line[hashes..].trim_end_matches('#'));
        let mut anchor = base.clone();
        let mut n = 0;
        while !found.insert(anchor.clone()) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
    }
    found
}

/// The targets of the inline links and images on a line of prose.
fn link_targets(line: &str) -> Vec<&str> {
    line.match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &line[at + 2..];
            let end = rest.find([')', ' '])?;
            Some(&rest[..end])
        })
        .collect()
}

/// `path` with `.` and `..` resolved, as a browser resolves a link.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// What is wrong with the relative links of `text`, which is read as if it
/// were the file `at`: a target that does not exist, or an anchor its
/// document has no heading for. Links with a scheme are not followed.
fn broken_links(at: &Path, text: &str) -> Vec<String> {
    let mut broken = Vec::new();
    for (n, line) in prose(text).iter().enumerate() {
        let Some(line) = line else { continue };
        for target in link_targets(line) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = match target.split_once('#') {
                Some((file, anchor)) => (file, Some(anchor)),
                None => (target, None),
            };
            let shown = at.strip_prefix(root()).unwrap_or(at);
            let place = format!("{}:{}: ({target})", shown.display(), n + 1);
            let path = if file.is_empty() {
                at.to_path_buf()
            } else {
                normalise(&at.parent().expect("a file's directory").join(file))
            };
            if !file.is_empty() && !path.exists() {
                broken.push(format!("{place}: no such file"));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            let doc = if file.is_empty() {
                text.to_string()
            } else if path.extension().is_some_and(|e| e == "md") {
                read(&path)
            } else {
                broken.push(format!(
                    "{place}: an anchor into a file that is not Markdown"
                ));
                continue;
            };
            if !anchors(&doc).contains(anchor) {
                broken.push(format!("{place}: no heading #{anchor}"));
            }
        }
    }
    broken
}

/// The files a document links to, resolved against its own place.
fn linked_files(at: &Path, text: &str) -> BTreeSet<PathBuf> {
    prose(text)
        .iter()
        .flatten()
        .flat_map(|line| link_targets(line))
        .filter(|t| !t.contains("://"))
        .map(|t| t.split('#').next().unwrap_or(t))
        .filter(|file| !file.is_empty())
        .map(|file| normalise(&at.parent().expect("a file's directory").join(file)))
        .collect()
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut broken = Vec::new();
    let mut links = 0;
    for path in markdown_files() {
        let text = read(&path);
        links += prose(&text)
            .iter()
            .flatten()
            .map(|l| link_targets(l).len())
            .sum::<usize>();
        broken.extend(broken_links(&path, &text));
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    // The README and docs/ link to each other some seventy times; far
    // fewer found means the link reader, not the documents, is broken.
    assert!(links > 50, "only {links} links found");
}

/// The checker itself: it finds what is broken, and only that.
#[test]
fn the_link_check_tells_a_broken_link() {
    let at = root().join("README.md");
    let text = "# Top\n\n## Twice\n\n## Twice\n\n\
        [ok](docs/api.md#subscribing-sse) [ok](#twice-1) [ok](docs/)\n\
        [web](https://example.com/#nowhere) `[code](nowhere.md)`\n\
        ```\n[fenced](nowhere.md)\n```\n\
        [bad](docs/nowhere.md) [bad](docs/api.md#nowhere) [bad](#twice-2)\n\
        [bad](Cargo.toml#package)\n";
    let broken = broken_links(&at, text);
    assert_eq!(broken.len(), 4, "{broken:#?}");
    for (found, expected) in broken.iter().zip([
        "no such file",
        "no heading #nowhere",
        "no heading #twice-2",
        "not Markdown",
    ]) {
        assert!(found.contains(expected), "{found} should say {expected}");
    }
}

#[test]
fn anchors_are_githubs() {
    for (heading, anchor) in [
        ("Subscribing (SSE)", "subscribing-sse"),
        ("Streaming Fly.io logs", "streaming-flyio-logs"),
        (
            "Delivery guarantees, and JetStream",
            "delivery-guarantees-and-jetstream",
        ),
        (
            "pino-loki, winston-loki, python-logging-loki",
            "pino-loki-winston-loki-python-logging-loki",
        ),
        ("One tenant's large requests", "one-tenants-large-requests"),
    ] {
        assert_eq!(slug(heading), anchor);
    }
    let doc = "# A\n```sh\n# not a heading\n```\n## A\n### `code` B\n";
    let found: Vec<_> = anchors(doc).into_iter().collect();
    assert_eq!(found, ["a", "a-1", "code-b"]);
}

/// Each reference page can be found from the README and from docs/'s
/// index, so none is left where only a search finds it.
#[test]
fn every_reference_page_is_linked_from_both_indexes() {
    let readme = root().join("README.md");
    let index = root().join("docs").join("README.md");
    let from_readme = linked_files(&readme, &read(&readme));
    let from_index = linked_files(&index, &read(&index));
    assert!(
        from_readme.contains(&index),
        "README.md links docs/README.md"
    );
    let pages = reference_pages();
    assert!(pages.len() >= 10, "docs/ has {} pages", pages.len());
    for page in pages {
        assert!(
            from_readme.contains(&page),
            "README.md links {}",
            page.display()
        );
        assert!(
            from_index.contains(&page),
            "docs/README.md links {}",
            page.display()
        );
    }
}

/// Whether `text` has `word` on its own, not as part of a longer name
/// (`FLY_APP` is not named by `FLY_APP_NAME`).
fn names_word(text: &str, word: &str) -> bool {
    let part_of_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(at, _)| {
        !text[..at].ends_with(part_of_name) && !text[at + word.len()..].starts_with(part_of_name)
    })
}

/// Every environment name the gateway reads is in the configuration
/// reference, and every one the CLI reads in the CLI's.
#[test]
fn every_environment_name_is_documented() {
    for (names, page) in [(ENV_NAMES, "configuration.md"), (CLI_ENV_NAMES, "cli.md")] {
        let text = read(&root().join("docs").join(page));
        let missing: Vec<_> = names
            .iter()
            .filter(|name| !names_word(&text, name))
            .collect();
        assert!(missing.is_empty(), "docs/{page} does not name {missing:?}");
    }
}
