//! ARCHITECTURE.md agrees with the code: it names every module `src/lib.rs` declares and every
//! warehouse table, every repository path it quotes exists, and the README points to it.

use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// The inline code spans (`…`) of a Markdown text, fenced blocks left out.
fn code_spans(markdown: &str) -> Vec<String> {
    let mut spans = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut parts = line.split('`');
        parts.next();
        while let (Some(inside), Some(_)) = (parts.next(), parts.next()) {
            spans.push(inside.to_string());
        }
    }
    spans
}

/// The modules `src/lib.rs` declares (`pub mod x;` or `mod x;`).
fn declared_modules() -> Vec<String> {
    read("src/lib.rs")
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            l.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn every_module_of_the_library_is_named() {
    let doc = read("ARCHITECTURE.md");
    let spans = code_spans(&doc);
    let modules = declared_modules();
    assert!(modules.len() > 5, "src/lib.rs declares only {modules:?}");
    let missing: Vec<String> = modules
        .iter()
        .map(|m| {
            if root().join("src").join(m).is_dir() {
                format!("src/{m}/")
            } else {
                format!("src/{m}.rs")
            }
        })
        .filter(|path| !spans.iter().any(|s| s == path))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md does not name these modules of src/lib.rs (as `path`): {missing:?}"
    );
}

#[test]
fn every_repository_path_quoted_exists() {
    const TOP: [&str; 7] = [
        "src/",
        "crates/",
        "graphql/",
        "queries/",
        "scripts/",
        "terraform/",
        "tests/",
    ];
    let doc = read("ARCHITECTURE.md");
    let paths: Vec<String> = code_spans(&doc)
        .iter()
        .filter_map(|s| s.split_whitespace().next())
        .filter(|s| TOP.iter().any(|top| s.starts_with(top)))
        .map(str::to_string)
        .collect();
    assert!(paths.len() > 10, "too few paths found: {paths:?}");
    let missing: Vec<&String> = paths
        .iter()
        .filter(|p| !root().join(p.as_str()).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md quotes paths that do not exist: {missing:?}"
    );
}

#[test]
fn every_table_is_named() {
    let spans = code_spans(&read("ARCHITECTURE.md"));
    let missing: Vec<&str> = ghstats::tables::ALL
        .iter()
        .map(|t| t.name)
        .filter(|name| !spans.iter().any(|s| s == name))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md does not name these tables of tables::ALL: {missing:?}"
    );
}

#[test]
fn the_readme_points_to_architecture_md() {
    let readme = read("README.md");
    assert!(
        readme.contains("(ARCHITECTURE.md)"),
        "README.md does not link ARCHITECTURE.md"
    );
    assert!(
        !readme.contains("../shared/DESIGN.md"),
        "README.md points outside the repository for its architecture"
    );
}

#[test]
fn code_spans_are_found_outside_fences_only() {
    let md = "a `src/x.rs` and `b c`\n```\n`src/fenced.rs`\n```\n`tests/y.rs`";
    assert_eq!(code_spans(md), ["src/x.rs", "b c", "tests/y.rs"]);
}
