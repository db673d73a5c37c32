//! The README is the map of the code and the docs hold the rest, so both are checked like code:
//!
//! - the README's "Module map" names every `.rs` file of the library (`functions/chat-sync/src`), every Lambda crate
//!   under `functions/`, every binary in `infra/src/bin` and every top-level module of `sandbox` and `infra`, and
//!   names nothing that is gone;
//! - every relative link in `README.md` and `docs/*.md` points to a file that exists and, with a `#anchor`, to a
//!   heading of that file (GitHub's slugs: lowercase, spaces to `-`, punctuation other than `-` and `_` dropped);
//! - every file or folder the README's "Where a change goes" names exists (a path written from the repository's
//!   root, or the end of one: `domain/note.rs` after `functions/chat-sync/src/domain/line.rs`).
//!
//! A module added without its line, or a section moved without its links, fails here.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("infra sits in the repository")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The entries of a directory: (name, is a directory), sorted.
fn entries(dir: &Path) -> Vec<(String, bool)> {
    let mut found: Vec<(String, bool)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let entry = entry.expect("a directory entry");
            let is_dir = entry.file_type().expect("a file type").is_dir();
            (entry.file_name().to_string_lossy().into_owned(), is_dir)
        })
        .collect();
    found.sort();
    found
}

/// Every `.rs` file under `dir`, as a path relative to it with `/`.
fn rust_files(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for (name, is_dir) in entries(dir) {
        if is_dir {
            let inner = rust_files(&dir.join(&name));
            files.extend(inner.into_iter().map(|file| format!("{name}/{file}")));
        } else if name.ends_with(".rs") {
            files.push(name);
        }
    }
    files
}

/// The README's `## Module map` section.
fn module_map() -> String {
    readme_section("Module map")
}

/// What the map must name, each as it is written there in backticks.
fn must_be_named() -> Vec<String> {
    let root = repo();
    let mut names: Vec<String> = rust_files(&root.join("functions/chat-sync/src"));
    for (name, is_dir) in entries(&root.join("functions")) {
        if is_dir && name != "chat-sync" {
            names.push(format!("functions/{name}"));
        }
    }
    for file in rust_files(&root.join("infra/src/bin")) {
        names.push(format!("infra/src/bin/{file}"));
    }
    for krate in ["sandbox/src", "infra/src"] {
        let all = entries(&root.join(krate));
        let files: BTreeSet<&str> = all
            .iter()
            .filter(|(_, is_dir)| !is_dir)
            .map(|(name, _)| name.as_str())
            .collect();
        for (name, is_dir) in &all {
            if !is_dir && name.ends_with(".rs") {
                names.push(format!("{krate}/{name}"));
            } else if *is_dir && name != "bin" && !files.contains(format!("{name}.rs").as_str()) {
                // A module that is a directory (`bench/mod.rs`); `dev.rs` with `dev/` is named by its file.
                names.push(format!("{krate}/{name}/"));
            }
        }
    }
    names
}

#[test]
fn the_readmes_module_map_names_every_module_crate_and_binary() {
    let map = module_map();
    let missing: Vec<String> = must_be_named()
        .into_iter()
        .filter(|name| !map.contains(&format!("`{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md's module map does not name {missing:#?}: add one line each, saying what it owns \
         (library files relative to functions/chat-sync/src, the rest from the repository's root)"
    );
}

#[test]
fn the_readmes_module_map_names_nothing_that_is_gone() {
    let root = repo();
    let library = root.join("functions/chat-sync/src");
    let mut gone = Vec::new();
    for row in module_map().lines().filter(|line| line.starts_with("| `")) {
        let first_cell = row.split('|').nth(1).unwrap_or_default();
        for name in first_cell.split('`').skip(1).step_by(2) {
            if !root.join(name).exists() && !library.join(name).exists() {
                gone.push(name.to_owned());
            }
        }
    }
    assert!(
        gone.is_empty(),
        "README.md's module map names what no longer exists: {gone:#?}"
    );
}

/// A README section, from its `## ` heading up to the next one.
fn readme_section(heading: &str) -> String {
    let readme = read(&repo().join("README.md"));
    let (_, section) = readme
        .split_once(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("README.md has a `## {heading}` section"));
    section.split("\n## ").next().unwrap_or_default().to_owned()
}

/// Every file and folder of the repository (folders with a trailing `/`), as paths from its root; not what the
/// build, npm or git keep there.
fn tree(dir: &Path, prefix: &str, paths: &mut Vec<String>) {
    for (name, is_dir) in entries(dir) {
        if is_dir && (name.starts_with('.') || name == "target" || name == "node_modules") {
            continue;
        }
        let path = format!("{prefix}{name}");
        if is_dir {
            tree(&dir.join(&name), &format!("{path}/"), paths);
            paths.push(format!("{path}/"));
        } else {
            paths.push(path);
        }
    }
}

/// The code spans of a text that name a file or a folder: a path with a `/` or a file name with an extension, with
/// no placeholder (`<name>`), pattern (`webhook-*.json`) or spaces.
fn named_paths(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| !span.contains(['<', '*', ' ', '(', '{', '#', '=']))
        .filter(|span| {
            span.contains('/')
                || [".rs", ".json", ".toml", ".md", ".yaml", ".mjs", ".txt"]
                    .iter()
                    .any(|ext| span.ends_with(ext))
        })
        .filter(|span| !span.starts_with("http"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_path_where_a_change_goes_names_exists() {
    let mut paths = Vec::new();
    tree(&repo(), "", &mut paths);
    let named = named_paths(&readme_section("Where a change goes"));
    assert!(
        named.len() > 20,
        "too few paths found: the parser is broken: {named:?}"
    );
    let gone: Vec<&String> = named
        .iter()
        .filter(|name| {
            !paths
                .iter()
                .any(|path| path == *name || path.ends_with(&format!("/{name}")))
        })
        .collect();
    assert!(
        gone.is_empty(),
        "README.md's \"Where a change goes\" names what does not exist: {gone:#?}"
    );
}

#[test]
fn named_paths_are_files_and_folders_not_code_or_placeholders() {
    let text = "`sync/round.rs`, `Cargo.toml`, `sandbox/src/hubspot/`, `EVENT_TYPES`, `parse_event`, \
                `functions/<name>/Cargo.toml`, `events/webhook-*.json`, `cargo run -p infra --bin sign-events`";
    assert_eq!(
        named_paths(text),
        ["sync/round.rs", "Cargo.toml", "sandbox/src/hubspot/"]
    );
}

/// Markdown outside fenced code blocks, with inline code spans blanked out (a link inside code is no link).
fn prose(markdown: &str) -> String {
    let mut text = String::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            text.push_str(line);
            text.push('\n');
        }
    }
    let mut in_code = false;
    text.chars()
        .filter_map(|c| {
            if c == '`' {
                in_code = !in_code;
                None
            } else if in_code {
                (c == '\n').then_some('\n')
            } else {
                Some(c)
            }
        })
        .collect()
}

/// The targets of the inline links (`[text](target)`) of a Markdown text.
fn link_targets(markdown: &str) -> Vec<String> {
    let text = prose(markdown);
    text.match_indices("](")
        .map(|(at, _)| {
            text[at + 2..]
                .chars()
                .take_while(|c| *c != ')' && !c.is_whitespace())
                .collect()
        })
        .collect()
}

/// GitHub's anchor for a heading: its text as shown (no backticks, a link's text), lowercased, punctuation other
/// than `-` and `_` dropped, each space a `-`.
fn slug(heading: &str) -> String {
    let mut shown = String::new();
    let mut rest = heading;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find("](").map(|i| open + i) else {
            break;
        };
        let Some(end) = rest[close..].find(')').map(|i| close + i) else {
            break;
        };
        shown.push_str(&rest[..open]);
        shown.push_str(&rest[open + 1..close]);
        rest = &rest[end + 1..];
    }
    shown.push_str(rest);
    shown
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every anchor a Markdown file's headings give, a repeated one numbered as GitHub does (`-1`, `-2`, …).
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut anchors = BTreeSet::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if fenced || !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(line[hashes..].trim().trim_end_matches('#').trim());
        let count = seen.entry(base.clone()).or_insert(0);
        anchors.insert(match *count {
            0 => base.clone(),
            n => format!("{base}-{n}"),
        });
        *count += 1;
    }
    anchors
}

/// `README.md` and every `docs/*.md`.
fn documents() -> Vec<PathBuf> {
    let root = repo();
    let mut files = vec![root.join("README.md")];
    files.extend(
        entries(&root.join("docs"))
            .into_iter()
            .filter(|(name, is_dir)| !is_dir && name.ends_with(".md"))
            .map(|(name, _)| root.join("docs").join(name)),
    );
    files
}

#[test]
fn every_relative_link_of_the_readme_and_docs_resolves() {
    let root = repo();
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in documents() {
        let shown = file
            .strip_prefix(&root)
            .unwrap_or(&file)
            .display()
            .to_string();
        for target in link_targets(&read(&file)) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                file.parent().expect("a directory").join(path)
            };
            if !resolved.exists() {
                broken.push(format!("{shown}: {target}: no such file"));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            let is_markdown = resolved.extension().is_some_and(|ext| ext == "md");
            if !is_markdown || !anchors(&read(&resolved)).contains(anchor) {
                broken.push(format!("{shown}: {target}: no such heading"));
            }
        }
    }
    assert!(checked > 0, "no link found: the link parser is broken");
    assert!(broken.is_empty(), "links that lead nowhere: {broken:#?}");
}

#[test]
fn slugs_and_links_follow_githubs_rules() {
    assert_eq!(
        slug("Deploy (AWS SAM + cargo-lambda)"),
        "deploy-aws-sam--cargo-lambda"
    );
    assert_eq!(
        slug("Identity tokens, the widget's stored session, and `make dev`: what is guaranteed"),
        "identity-tokens-the-widgets-stored-session-and-make-dev-what-is-guaranteed"
    );
    assert_eq!(
        slug("The [widget](widget.md) — size_budget"),
        "the-widget--size_budget"
    );
    let text = "# A\n\n## A\n\n```sh\n# not a heading\n[x](gone.md)\n```\n\nsee `[y](code.md)` and [the\nB](b.md#c)\n";
    assert_eq!(
        anchors(text),
        BTreeSet::from(["a".to_owned(), "a-1".to_owned()])
    );
    assert_eq!(link_targets(text), vec!["b.md#c".to_owned()]);
}
