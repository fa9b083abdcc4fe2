//! Dependency direction, checked on the source text of every file under `src/`:
//! - the product never refers to the lab: only `src/lab/` and `src/cli/` may name `crate::lab`
//!   (also through `use crate::{lab, …}` or a `super::` path that reaches it);
//! - only `src/api/` may know actix.
//!
//! Comments and string literals are ignored; paths are read from the tokens of the code.

use std::path::Path;

/// One token of code: an identifier (or number), `::`, or a single punctuation character.
struct Token {
    text: String,
    line: usize,
}

/// `src` with comments and string/char literals blanked out (newlines kept, so lines still count).
fn code_only(src: &str) -> String {
    let s: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < s.len() {
        let prev_is_ident = i > 0 && (s[i - 1].is_alphanumeric() || s[i - 1] == '_');
        let n = match &s[i..] {
            ['/', '/', ..] => s[i..]
                .iter()
                .position(|&c| c == '\n')
                .unwrap_or(s.len() - i),
            ['/', '*', ..] => block_comment_len(&s[i..]),
            rest if !prev_is_ident => literal_len(rest),
            _ => 0,
        };
        if n == 0 {
            out.push(s[i]);
            i += 1;
        } else {
            out.extend(
                s[i..i + n]
                    .iter()
                    .map(|&c| if c == '\n' { '\n' } else { ' ' }),
            );
            i += n;
        }
    }
    out
}

/// Length of the (possibly nested) block comment at the start of `s`.
fn block_comment_len(s: &[char]) -> usize {
    let (mut depth, mut i) = (0, 0);
    while i < s.len() {
        match &s[i..] {
            ['/', '*', ..] => (depth, i) = (depth + 1, i + 2),
            ['*', '/', ..] => {
                (depth, i) = (depth - 1, i + 2);
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    s.len()
}

/// Length of the string or char literal at the start of `s` (`"…"`, `b"…"`, `r#"…"#`, `'x'`,
/// `'\n'`), or 0 (a lifetime `'a` is not a literal).
fn literal_len(s: &[char]) -> usize {
    let prefix = s.iter().take_while(|&&c| c == 'b' || c == 'r').count();
    let raw = s[..prefix].contains(&'r');
    let hashes = s[prefix..].iter().take_while(|&&c| c == '#').count();
    if s.get(prefix + hashes) == Some(&'"') && (raw || hashes == 0) {
        let start = prefix + hashes + 1;
        let mut i = start;
        while i < s.len() {
            if !raw && s[i] == '\\' {
                i += 2;
                continue;
            }
            if s[i] == '"'
                && s[i + 1..]
                    .iter()
                    .take(hashes)
                    .filter(|&&c| c == '#')
                    .count()
                    == hashes
            {
                return i + 1 + hashes;
            }
            i += 1;
        }
        return s.len();
    }
    match s {
        ['\'', '\\', _, rest @ ..] => rest.iter().position(|&c| c == '\'').map_or(0, |p| p + 4),
        ['\'', _, '\'', ..] => 3,
        _ => 0,
    }
}

fn tokens(code: &str) -> Vec<Token> {
    let mut out = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let mut chars = line.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let text = if c.is_alphanumeric() || c == '_' {
                let mut end = i + c.len_utf8();
                while let Some(&(j, d)) = chars.peek() {
                    if !(d.is_alphanumeric() || d == '_') {
                        break;
                    }
                    end = j + d.len_utf8();
                    chars.next();
                }
                line[i..end].to_string()
            } else if c == ':' && chars.peek().map(|&(_, d)| d) == Some(':') {
                chars.next();
                "::".to_string()
            } else if c.is_whitespace() {
                continue;
            } else {
                c.to_string()
            };
            out.push(Token { text, line: n + 1 });
        }
    }
    out
}

/// The module path of a file under `src/` (`src/note/mod.rs` → `["note"]`, `src/lib.rs` → `[]`).
fn module_path(file: &str) -> Vec<String> {
    let rel = file.trim_start_matches("src/").trim_end_matches(".rs");
    let rel = rel.trim_end_matches("/mod");
    if rel == "lib" || rel == "main" {
        return vec![];
    }
    rel.split('/').map(str::to_string).collect()
}

/// The first segment(s) a path continues with after `::` at `t[i]`: `lab` of `crate::lab::x`,
/// `lab` and `note` of `crate::{lab::x, note}`.
fn first_segments(t: &[Token], i: usize) -> Vec<&str> {
    match t.get(i).map(|t| t.text.as_str()) {
        Some("{") => {
            let mut out = Vec::new();
            let mut depth = 0;
            for (k, tok) in t[i..].iter().enumerate() {
                match tok.text.as_str() {
                    "{" => depth += 1,
                    "}" if depth == 1 => break,
                    "}" => depth -= 1,
                    _ if depth == 1 && matches!(t[i + k - 1].text.as_str(), "{" | ",") => {
                        out.push(tok.text.as_str())
                    }
                    _ => {}
                }
            }
            out
        }
        Some(s) => vec![s],
        None => vec![],
    }
}

/// Lines of `file` whose code refers to the lab module tree.
fn lab_references(file: &str, source: &str) -> Vec<usize> {
    let t = tokens(&code_only(source));
    let module = module_path(file);
    let mut lines = Vec::new();
    let mut i = 0;
    while i < t.len() {
        let after_sep = i > 0 && t[i - 1].text == "::";
        let (reaches_root, next) = match t[i].text.as_str() {
            "crate" | "fhirscribe" if !after_sep => (true, i + 2),
            "super" if !after_sep => {
                let mut n = 0;
                while t.get(i + 2 * n).is_some_and(|x| x.text == "super")
                    && t.get(i + 2 * n + 1).is_some_and(|x| x.text == "::")
                {
                    n += 1;
                }
                // From the file's module, or from a `mod tests { … }` inside it.
                let root = n > 0 && (n == module.len() || n == module.len() + 1);
                (root, i + (2 * n).max(1))
            }
            _ => (false, i + 1),
        };
        let is_path = t.get(next - 1).is_some_and(|x| x.text == "::");
        if reaches_root && is_path && first_segments(&t, next).contains(&"lab") {
            lines.push(t[i].line);
        }
        i = next.max(i + 1);
    }
    lines
}

/// The rules broken by one file, as `file:line: message`.
fn violations(file: &str, source: &str) -> Vec<String> {
    let top = module_path(file).first().cloned().unwrap_or_default();
    let mut out = Vec::new();
    if top != "lab" && top != "cli" {
        for line in lab_references(file, source) {
            out.push(format!(
                "{file}:{line}: product code refers to the lab (only src/lab/ and src/cli/ may)"
            ));
        }
    }
    if top != "api" {
        for tok in tokens(&code_only(source)) {
            if tok.text.to_lowercase().contains("actix") {
                out.push(format!(
                    "{file}:{}: `{}` outside src/api/ (only the api module knows actix)",
                    tok.line, tok.text
                ));
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn dependencies_point_the_right_way() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut broken = Vec::new();
    let mut cli_to_lab = 0;
    for path in &files {
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let source = std::fs::read_to_string(path).unwrap();
        broken.extend(violations(&rel, &source));
        if rel.starts_with("src/cli/") {
            cli_to_lab += lab_references(&rel, &source).len();
        }
    }
    assert!(files.len() > 20, "only {} files under src/", files.len());
    assert!(
        cli_to_lab > 0,
        "the scan found no `crate::lab` in src/cli/: is it still reading paths?"
    );
    assert!(
        broken.is_empty(),
        "dependency rules broken:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_checker_sees_what_it_must() {
    let bad = |file: &str, src: &str| violations(file, src).len();
    // Product → lab, in the ways a path can be written.
    assert_eq!(bad("src/note/mod.rs", "use crate::lab::rouge;"), 1);
    assert_eq!(
        bad(
            "src/pipeline.rs",
            "use crate::{\n    audio,\n    lab::notes,\n};"
        ),
        1
    );
    assert_eq!(
        bad(
            "src/pipeline.rs",
            "fn f() { crate :: lab :: wer::counts(\"a\", \"b\"); }"
        ),
        1
    );
    assert_eq!(bad("src/annotate.rs", "use super::lab;"), 1);
    assert_eq!(bad("src/note/build.rs", "use super::super::lab::aci;"), 1);
    assert_eq!(
        bad(
            "src/note/build.rs",
            "mod tests { use super::super::super::lab; }"
        ),
        1
    );
    assert_eq!(
        bad(
            "src/main.rs",
            "fn main() { fhirscribe::lab::wer::counts(\"\", \"\"); }"
        ),
        1
    );
    // actix outside src/api/.
    assert_eq!(bad("src/pipeline.rs", "use actix_web::{web, App};"), 1);
    assert_eq!(
        bad("src/jobs/mod.rs", "#[actix_web::main]\nasync fn main() {}"),
        1
    );
    // Allowed: the lab and the CLI use the lab, the lab uses the product, the api knows actix.
    assert_eq!(bad("src/cli/lab.rs", "use crate::lab;"), 0);
    assert_eq!(
        bad(
            "src/lab/notes.rs",
            "use super::rouge;\nuse crate::note::support;"
        ),
        0
    );
    assert_eq!(bad("src/api/startup.rs", "use actix_web::App;"), 0);
    // Not references: comments, strings, other names, a nested `lab` module of some other module.
    let quiet = "// see crate::lab::notes and actix\n/* crate::lab /* nested */ actix */\n\
                 /// [`crate::lab`]\nconst S: &str = \"crate::lab actix /*\";\n\
                 const R: &str = r#\"crate::lab \" actix\"#;\nconst C: char = '\"';\n\
                 fn f<'a>(x: &'a str) { crate::label(x); crate::clinical::lab::x(); }";
    assert_eq!(violations("src/pipeline.rs", quiet), Vec::<String>::new());
    assert_eq!(bad("src/note/build.rs", "use super::lab;"), 0); // crate::note::lab
                                                                // Line numbers point at the reference.
    assert_eq!(
        violations("src/audio/mod.rs", "\n\nuse crate::lab;"),
        ["src/audio/mod.rs:3: product code refers to the lab (only src/lab/ and src/cli/ may)"]
    );
}
