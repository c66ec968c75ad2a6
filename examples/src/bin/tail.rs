//! `tail`: print the events of a server-sent-events stream, one line each.
//!
//!     cargo run --release -p examples --bin tail -- URL [--json] [--header 'Name: value']...
//!         [--last-event-id ID] [--retry MS] [--with-credentials] [--method M] [--body TEXT]
//!         [--max-events N] [--events TYPE,TYPE...]
//!
//! The same program exists for C, Python and Node (`examples/*/tail.*`), with the same
//! arguments and output, so one scenario can check every face against the others.
//! Exit status: 0 after `--max-events` messages, 2 when the source fails for good,
//! 130 on Ctrl-C, 64 for bad arguments or an invalid URL.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use eventsource_core::{Event, EventSource, Options, ReadyState};

const USAGE: &str = "usage: tail URL [--json] [--header 'Name: value']... [--last-event-id ID] \
[--retry MS] [--with-credentials] [--method M] [--body TEXT] [--max-events N] [--events TYPE,TYPE...]";

struct Args {
    url: String,
    json: bool,
    options: Options,
    max_events: Option<u64>,
    events: Vec<String>,
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut url = None;
    let mut json = false;
    let mut options = Options::default();
    let mut max_events = None;
    let mut events = vec!["message".to_owned()];
    while let Some(arg) = argv.next() {
        let mut value = |name: &str| argv.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--json" => json = true,
            "--with-credentials" => options.with_credentials = true,
            "--header" => {
                let h = value("--header")?;
                let (name, v) = h
                    .split_once(':')
                    .ok_or_else(|| format!("--header {h:?}: expected 'Name: value'"))?;
                options.headers.push((name.trim().to_owned(), v.trim().to_owned()));
            }
            "--last-event-id" => options.last_event_id = Some(value("--last-event-id")?),
            "--retry" => {
                let v = value("--retry")?;
                let ms: u64 =
                    v.parse().map_err(|_| format!("--retry {v:?}: expected milliseconds"))?;
                options.retry = Duration::from_millis(ms);
            }
            "--method" => options.method = value("--method")?,
            "--body" => options.body = Some(value("--body")?.into_bytes()),
            "--max-events" => {
                let v = value("--max-events")?;
                max_events =
                    Some(v.parse().map_err(|_| format!("--max-events {v:?}: expected a count"))?);
            }
            "--events" => {
                let v = value("--events")?;
                events.extend(v.split(',').filter(|t| !t.is_empty()).map(str::to_owned));
            }
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ if url.is_none() => url = Some(arg),
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    let url = url.ok_or("missing URL")?;
    Ok(Args { url, json, options, max_events, events })
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("tail: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(64);
        }
    };
    let es = match EventSource::with_options(&args.url, args.options.clone()) {
        Ok(es) => es,
        Err(e) => {
            eprintln!("tail: {e}");
            return ExitCode::from(64);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
    let rt = rt.expect("tail: cannot start a tokio runtime");
    let code = rt.block_on(run(&es, &args));
    es.close();
    ExitCode::from(code)
}

async fn run(es: &EventSource, args: &Args) -> u8 {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut line = String::new();
    let mut batch = Vec::new();
    let mut messages = 0u64;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let n = tokio::select! {
            n = es.recv_many(&mut batch, 4096) => n,
            _ = &mut ctrl_c => {
                es.close();
                let _ = out.flush();
                return 130;
            }
        };
        if n == 0 {
            let _ = out.flush();
            return 2; // closed without a fatal error being seen: treat as failure
        }
        let mut exit = None;
        for event in batch.drain(..) {
            if let Event::Message(m) = &event {
                // A message named `error` reaches the error listener, as in a browser: it is
                // printed, and counted only when its type is listened to as well.
                let listened = args.events.iter().any(|t| t == m.event_type.as_str());
                if !listened && m.event_type.as_str() != "error" {
                    continue;
                }
                if listened {
                    messages += 1;
                }
            }
            line.clear();
            format_event(&mut line, &event, args.json);
            line.push('\n');
            // Whole lines only; flushed per batch below, so a pipe sees each event at once.
            if out.write_all(line.as_bytes()).is_err() {
                return 0; // stdout closed (e.g. `| head`): nothing left to do
            }
            if matches!(&event, Event::Error(e) if e.ready_state == ReadyState::Closed) {
                exit = Some(2);
                break;
            }
            if args.max_events.is_some_and(|max| messages >= max) {
                exit = Some(0);
                break;
            }
        }
        if out.flush().is_err() {
            return 0;
        }
        if let Some(code) = exit {
            return code;
        }
    }
}

fn format_event(line: &mut String, event: &Event, json: bool) {
    use std::fmt::Write;
    match (event, json) {
        (Event::Open, true) => line.push_str(r#"{"kind":"open","readyState":1}"#),
        (Event::Open, false) => line.push_str("open"),
        (Event::Message(m), true) => {
            line.push_str(r#"{"kind":"message","type":"#);
            json_str(line, &m.event_type);
            line.push_str(r#","data":"#);
            json_str(line, &m.data);
            line.push_str(r#","lastEventId":"#);
            json_str(line, &m.last_event_id);
            line.push_str(r#","origin":"#);
            json_str(line, &m.origin);
            line.push_str(r#","readyState":1}"#);
        }
        (Event::Message(m), false) => {
            escape(line, &m.event_type);
            if !m.last_event_id.is_empty() {
                line.push_str(" #");
                escape(line, &m.last_event_id);
            }
            line.push_str(": ");
            escape(line, &m.data);
        }
        (Event::Error(e), true) => {
            let _ =
                write!(line, r#"{{"kind":"error","readyState":{},"message":"#, e.ready_state as u8);
            json_str(line, e.error.message());
            match e.error.status() {
                Some(s) => _ = write!(line, r#","status":{s}}}"#),
                None => line.push_str(r#","status":null}"#),
            }
        }
        (Event::Error(e), false) => {
            line.push_str("error: ");
            escape(line, e.error.message());
            if let Some(s) = e.error.status() {
                let _ = write!(line, " (HTTP {s})");
            }
            line.push_str(if e.ready_state == ReadyState::Closed {
                ", closed"
            } else {
                ", reconnecting"
            });
        }
    }
}

/// Appends `s` for a terminal: a backslash, CR, LF and tab as `\\`, `\r`, `\n`, `\t`, and every
/// other control character (C0, DEL, C1) as `\u{HEX}`, so that a stream cannot drive the terminal.
fn escape(line: &mut String, s: &str) {
    use std::fmt::Write;
    for c in s.chars() {
        match c {
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if c.is_control() => _ = write!(line, "\\u{{{:x}}}", c as u32),
            c => line.push(c),
        }
    }
}

/// Appends `s` as a JSON string literal (UTF-8 kept as is; controls escaped).
fn json_str(out: &mut String, s: &str) {
    use std::fmt::Write;
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..0x20 => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}
