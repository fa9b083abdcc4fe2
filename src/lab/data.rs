//! Readers for the evaluation/training formats: CSV (MTS-Dialog, ACI-BENCH), dialogue text,
//! CoNLL/IOB.

use crate::clinical::Role;

/// Parses RFC 4180 CSV (quoted fields, doubled quotes, newlines inside quotes).
pub fn parse_csv(s: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut in_q = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if in_q {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    in_q = false;
                }
            } else {
                field.push(c);
            }
        } else {
            match c {
                '"' => in_q = true,
                ',' => row.push(std::mem::take(&mut field)),
                '\r' => {}
                '\n' => {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                _ => field.push(c),
            }
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// One MTS-Dialog record.
#[derive(Debug, Clone)]
pub struct MtsRecord {
    pub id: String,
    pub header: String,
    pub turns: Vec<(Role, String)>,
}

/// Reads an MTS-Dialog CSV (`ID,section_header,section_text,dialogue`).
pub fn read_mts(csv_text: &str) -> Result<Vec<MtsRecord>, String> {
    let rows = parse_csv(csv_text);
    let head = rows.first().ok_or("empty csv")?;
    let col = |name: &str| {
        head.iter()
            .position(|h| h.trim().trim_start_matches('\u{feff}') == name)
            .ok_or(format!("missing column {name}"))
    };
    let (ci, ch, cd) = (col("ID")?, col("section_header")?, col("dialogue")?);
    let mut out = Vec::new();
    for r in rows.iter().skip(1) {
        if r.len() <= cd.max(ch).max(ci) {
            continue;
        }
        out.push(MtsRecord {
            id: r[ci].clone(),
            header: r[ch].trim().to_string(),
            turns: parse_dialogue(&r[cd]),
        });
    }
    Ok(out)
}

/// Splits `Doctor: ...\nPatient: ...` (or `[doctor] ...`) text into role-labelled turns; lines
/// without a speaker label continue the previous turn.
pub fn parse_dialogue(text: &str) -> Vec<(Role, String)> {
    let mut turns: Vec<(Role, String)> = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() {
            continue;
        }
        let mut label_end = None;
        if l.starts_with('[') {
            if let Some(e) = l.find(']') {
                label_end = Some((e, e + 1));
            }
        } else if let Some(e) = l.find(':') {
            let lab = &l[..e];
            if e < 24
                && !lab.is_empty()
                && lab
                    .chars()
                    .all(|c| c.is_alphabetic() || c == '_' || c == ' ')
            {
                label_end = Some((e, e + 1));
            }
        }
        match label_end {
            Some((e, rest)) => {
                let role = Role::from_label(&l[..e + usize::from(l.starts_with('['))]);
                turns.push((role, l[rest..].trim().to_string()));
            }
            None => {
                if let Some(last) = turns.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(l);
                } else {
                    turns.push((Role::Unknown, l.to_string()));
                }
            }
        }
    }
    turns
}

/// One CoNLL sentence: tokens and their IOB tags (`B-Disease`, `I-Chemical`, `O`).
#[derive(Debug, Clone, Default)]
pub struct IobSentence {
    pub tokens: Vec<String>,
    pub tags: Vec<String>,
}

/// Reads CoNLL/IOB: one token per line, the token is the first column (or the second when the
/// first is a running number, as in the BC5CDR `.ssv`), the tag the last; blank lines separate
/// sentences.
pub fn read_iob(text: &str) -> Vec<IobSentence> {
    let mut out = Vec::new();
    let mut cur = IobSentence::default();
    for line in text.lines() {
        let cols: Vec<&str> = line.split(['\t', ' ']).filter(|c| !c.is_empty()).collect();
        if cols.is_empty() {
            if !cur.tokens.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if cols.len() < 2 {
            continue;
        }
        let tok = if cols.len() >= 3 && cols[0].chars().all(|c| c.is_ascii_digit()) {
            cols[1]
        } else {
            cols[0]
        };
        cur.tokens.push(tok.to_string());
        cur.tags.push(cols[cols.len() - 1].to_string());
    }
    if !cur.tokens.is_empty() {
        out.push(cur);
    }
    out
}

/// Gold spans `(begin_token, end_token_exclusive, type)` of an IOB sentence.
pub fn iob_spans(tags: &[String]) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut start: Option<(usize, String)> = None;
    for (i, t) in tags.iter().enumerate() {
        let (bio, ty) = match t.split_once('-') {
            Some((b, ty)) => (b, ty.to_string()),
            None => ("O", String::new()),
        };
        let cont = bio == "I" && start.as_ref().is_some_and(|(_, s)| *s == ty);
        if !cont {
            if let Some((s, sty)) = start.take() {
                out.push((s, i, sty));
            }
            if bio == "B" || bio == "I" {
                start = Some((i, ty));
            }
        }
    }
    if let Some((s, sty)) = start {
        out.push((s, tags.len(), sty));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes() {
        let r = parse_csv("a,b\n1,\"x, \"\"y\"\"\nz\"\n");
        assert_eq!(r[1][1], "x, \"y\"\nz");
        let rows = parse_csv("a,b,c\n1,\"x, \"\"y\"\"\",3\n");
        assert_eq!(rows[1], ["1", "x, \"y\"", "3"]);
    }

    #[test]
    fn dialogue() {
        let t = parse_dialogue("Doctor: Hi?\nPatient: No.\nmore\nGuest_family: yes");
        assert_eq!(t.len(), 3);
        assert_eq!(t[1], (Role::Patient, "No. more".to_string()));
        assert_eq!(t[2].0, Role::Patient);
        let t = parse_dialogue("[doctor] hello\n[patient] hi");
        assert_eq!(t[0], (Role::Clinician, "hello".to_string()));
    }

    #[test]
    fn iob() {
        let s = read_iob("1 a x x B-Disease\n2 b x x I-Disease\n3 c x x O\n\nfoo\tB-Disease\n");
        assert_eq!(s.len(), 2);
        assert_eq!(iob_spans(&s[0].tags), vec![(0, 2, "Disease".to_string())]);
        assert_eq!(s[1].tokens[0], "foo");
    }
}
