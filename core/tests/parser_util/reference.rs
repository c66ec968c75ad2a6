//! The reference parser that the property tests and the fuzz target `parser_diff` compare the
//! parser with.

use eventsource_core::parser::MAX_RETRY_MS;

use super::{Out, Run, msg};

/// The reference: decode the whole body (lossy UTF-8), drop one BOM, split lines by hand,
/// interpret them per §6 of the digest. As simple as possible, no performance concern.
pub struct Reference {
    pub last_event_id: String,
}

impl Reference {
    pub fn stream(&mut self, body: &[u8]) -> Run {
        let text = String::from_utf8_lossy(body);
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
        let mut lines = Vec::new();
        let mut cur = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' => {
                    lines.push(std::mem::take(&mut cur));
                    if chars.peek() == Some(&'\n') {
                        chars.next();
                    }
                }
                '\n' => lines.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        // `cur` is the incomplete last line: discarded.
        let mut items = Vec::new();
        let mut data = String::new();
        let mut event_type = String::new();
        let mut id_buffer = self.last_event_id.clone();
        for line in lines {
            if line.is_empty() {
                self.last_event_id = id_buffer.clone();
                if data.is_empty() {
                    event_type.clear();
                    continue;
                }
                if data.ends_with('\n') {
                    data.pop();
                }
                let ty = if event_type.is_empty() { "message" } else { &event_type };
                items.push(msg(ty, &data, &self.last_event_id));
                data.clear();
                event_type.clear();
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (name, value) = match line.find(':') {
                Some(i) => {
                    let v = &line[i + 1..];
                    (&line[..i], v.strip_prefix(' ').unwrap_or(v))
                }
                None => (&line[..], ""),
            };
            match name {
                "data" => {
                    data.push_str(value);
                    data.push('\n');
                }
                "event" => event_type = value.to_string(),
                "id" if !value.contains('\0') => id_buffer = value.to_string(),
                "retry" if !value.is_empty() && value.chars().all(|c| c.is_ascii_digit()) => {
                    let ms = value.parse::<u128>().unwrap_or(u128::MAX);
                    items.push(Out::Retry(ms.min(u128::from(MAX_RETRY_MS)) as u64));
                }
                _ => {}
            }
        }
        Run { items, last_event_id: self.last_event_id.clone() }
    }
}
