//! Request routing and the endpoints.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue, LOCATION};
use hyper::{Request, Response, StatusCode};

use crate::body::{Out, Step};
use crate::log::{DoneGuard, Entry, Log, to_json};
use crate::query::Query;
use crate::stream::StreamGen;

/// What every connection's service shares.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) log: Arc<Log>,
    pub(crate) port: u16,
}

const SSE: &str = "text/event-stream";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn plain(status: StatusCode, text: &str) -> Response<Out> {
    let mut resp = Response::new(Out::full(text.to_owned()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

fn no_content() -> Response<Out> {
    let mut resp = Response::new(Out::empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp
}

fn sse(body: Out) -> Response<Out> {
    let mut resp = Response::new(body);
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(SSE));
    resp.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// The hyper service: records the request under `t`, then routes it.
pub(crate) async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Out>, Infallible> {
    let at_ms = state.log.now_ms();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let query = Query::parse(parts.uri.query());
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();

    let token = query.text("t").filter(|_| path != "/log");
    let mut k = 1;
    let mut done = None;
    if let Some(token) = token {
        let mut headers: Vec<(String, String)> = Vec::new();
        for (name, value) in &parts.headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            match headers.iter_mut().find(|(n, _)| n == name.as_str()) {
                Some((_, v)) => {
                    v.push_str(", ");
                    v.push_str(&value);
                }
                None => headers.push((name.as_str().to_owned(), value)),
            }
        }
        let entry = Entry {
            method: parts.method.to_string(),
            path: path.clone(),
            query: query.raw().to_owned(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            at_ms,
            done_ms: None,
        };
        let (index, nth) = state.log.record(&token, entry);
        k = nth;
        done = Some(Arc::new(DoneGuard { log: state.log.clone(), token, index }));
    }

    let resp = match path.as_str() {
        "/log" => log(&state, &query),
        "/script" => script(&query, k).await,
        "/redirect" => redirect(&query),
        "/stream" => sse(Out::generated(StreamGen::from_query(&query))),
        p => match p.strip_prefix("/scenario/") {
            Some(name) => scenario(&state, name, &query, k),
            None => plain(StatusCode::NOT_FOUND, "not found\n"),
        },
    };
    let (parts, body) = resp.into_parts();
    Ok(Response::from_parts(parts, body.with_done(done)))
}

fn log(state: &State, q: &Query) -> Response<Out> {
    let Some(token) = q.text("t") else {
        return plain(StatusCode::BAD_REQUEST, "GET /log needs ?t=TOKEN\n");
    };
    let mut resp = Response::new(Out::full(to_json(&state.log.entries(&token))));
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// `ANY /script?t=TOKEN&c1=...`: see the README.
async fn script(q: &Query, k: usize) -> Response<Out> {
    let key = |name: &str| format!("{name}{k}");
    let Some(body) = q.get(&key("c")).or(if k == 1 { Some(&b""[..]) } else { None }) else {
        return no_content();
    };
    if let Some(d) = q.num(&key("delay")) {
        tokio::time::sleep(ms(d)).await;
    }
    let status = q
        .num(&key("s"))
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);

    let body = Bytes::copy_from_slice(body);
    let mut steps = Vec::new();
    if let Some(d) = q.num(&key("bodydelay")) {
        steps.push(Step::Sleep(ms(d)));
    }
    let pause = ms(q.num(&key("pause")).or_else(|| q.num("pause")).unwrap_or(50));
    if q.flag("drip") || q.flag(&key("drip")) {
        for i in 0..body.len() {
            if i > 0 {
                steps.push(Step::Sleep(ms(1)));
            }
            steps.push(Step::Send(body.slice(i..i + 1)));
        }
    } else if let Some(split) = q.text(&key("split")).or_else(|| q.text("split")) {
        let mut cuts: Vec<usize> =
            split.split(',').filter_map(|s| s.trim().parse().ok()).filter(|&c| c > 0).collect();
        cuts.retain(|&c| c < body.len());
        cuts.sort_unstable();
        cuts.dedup();
        let mut from = 0;
        for cut in cuts.into_iter().chain(std::iter::once(body.len())) {
            if from > 0 {
                steps.push(Step::Sleep(pause));
            }
            steps.push(Step::Send(body.slice(from..cut)));
            from = cut;
        }
    } else if !body.is_empty() {
        steps.push(Step::Send(body.clone()));
    }
    if q.flag(&key("abort")) {
        steps.push(Step::Sleep(ms(50)));
        steps.push(Step::Abort);
    } else if q.flag(&key("hold")) {
        steps.push(Step::Hold);
    }

    let out = if q.flag(&key("cl")) { Out::exact(body) } else { Out::steps(steps) };
    let mut resp = Response::new(out);
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    match q.get(&key("ct")) {
        None => {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(SSE));
        }
        Some(b"none") => {}
        Some(ct) => {
            if let Ok(v) = HeaderValue::from_bytes(ct) {
                headers.insert(CONTENT_TYPE, v);
            }
        }
    }
    if let Some(Ok(loc)) = q.get(&key("loc")).map(HeaderValue::from_bytes) {
        headers.insert(LOCATION, loc);
    }
    let hdr = key("hdr");
    for line in q.get_all(&hdr) {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let value = &line[colon + 1..];
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(n), Ok(v)) =
            (HeaderName::from_bytes(line[..colon].trim_ascii()), HeaderValue::from_bytes(value))
        {
            headers.append(n, v);
        }
    }
    resp
}

/// `GET /redirect?code=302&to=TARGET`.
fn redirect(q: &Query) -> Response<Out> {
    let code = q
        .num("code")
        .and_then(|c| u16::try_from(c).ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::FOUND);
    let Some(Ok(to)) = q.get("to").map(HeaderValue::from_bytes) else {
        return plain(StatusCode::BAD_REQUEST, "GET /redirect needs ?to=URL-ENCODED-TARGET\n");
    };
    let mut resp = Response::new(Out::empty());
    *resp.status_mut() = code;
    resp.headers_mut().insert(LOCATION, to);
    resp
}

/// The byte stream of `/scenario/wpt-comments` (WPT `format-comments`).
pub(crate) fn wpt_comments() -> Vec<u8> {
    let long = "x".repeat(2048);
    let mut v = Vec::new();
    v.extend_from_slice(b"data:1\r:\0\n:\r\ndata:2\n:");
    v.extend_from_slice(long.as_bytes());
    v.extend_from_slice(b"\rdata:3\n:data:fail\r:");
    v.extend_from_slice(long.as_bytes());
    v.extend_from_slice(b"\ndata:4\n\n");
    v
}

/// Puts `retry: MS\n` (from `?retry=MS`) at the start of `body`, after a leading BOM.
fn with_retry(q: &Query, body: Vec<u8>) -> Vec<u8> {
    let Some(retry) = q.num("retry") else { return body };
    let bom = if body.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    let mut out = body[..bom].to_vec();
    out.extend_from_slice(format!("retry: {retry}\n").as_bytes());
    out.extend_from_slice(&body[bom..]);
    out
}

/// `GET /scenario/NAME`.
fn scenario(state: &State, name: &str, q: &Query, k: usize) -> Response<Out> {
    // Connections allowed before the scenario answers 204 (counted per `t`, per path).
    let limit = match name {
        "bom-each" => 3,
        "drop" => 2,
        "cross-origin" => usize::MAX,
        _ => 1,
    };
    if k > limit {
        return no_content();
    }
    let size = |default: u64| q.num("size").unwrap_or(default).min(1 << 30) as usize;
    match name {
        "tricky" => {
            let body = with_retry(q, crate::TRICKY.to_vec());
            if q.flag("drip") {
                let body = Bytes::from(body);
                let mut steps = Vec::new();
                for i in 0..body.len() {
                    if i > 0 {
                        steps.push(Step::Sleep(ms(1)));
                    }
                    steps.push(Step::Send(body.slice(i..i + 1)));
                }
                sse(Out::steps(steps))
            } else {
                sse(Out::full(body))
            }
        }
        "wpt-comments" => sse(Out::full(with_retry(q, wpt_comments()))),
        "long-line" => {
            let mut body = b"data: ".to_vec();
            body.resize(6 + size(1 << 20), b'x');
            body.extend_from_slice(b"\n\n");
            sse(Out::full(with_retry(q, body)))
        }
        "long-comment" => {
            let mut body = b":".to_vec();
            body.resize(1 + size(256 << 10), b'x');
            body.extend_from_slice(b"\ndata: after\n\n");
            sse(Out::full(with_retry(q, body)))
        }
        "endless-line" => {
            let first = Bytes::from(with_retry(q, b"data: ".to_vec()));
            sse(Out::repeat(Some(first), Bytes::from(vec![b'x'; 64 << 10])))
        }
        "endless-event" => {
            let mut line = b"data: ".to_vec();
            line.resize(1023, b'x');
            line.push(b'\n');
            let chunk = line.repeat(64);
            let first = with_retry(q, Vec::new());
            let first = if first.is_empty() { None } else { Some(Bytes::from(first)) };
            sse(Out::repeat(first, Bytes::from(chunk)))
        }
        "drop" => {
            if k == 1 {
                let body = with_retry(q, b"data: one\n\ndata: partial".to_vec());
                sse(Out::steps(vec![Step::Send(body.into()), Step::Sleep(ms(50)), Step::Abort]))
            } else {
                sse(Out::full(&b"data: two\n\n"[..]))
            }
        }
        "content-length" => {
            let body = with_retry(q, b"data: cl\n\n".to_vec());
            sse(Out::exact(body))
        }
        "many" => {
            let count = q.num("count").unwrap_or(500);
            let mut body = Vec::new();
            for i in 1..=count {
                body.extend_from_slice(format!("id: {i}\ndata: {i}\n\n").as_bytes());
            }
            sse(Out::full(with_retry(q, body)))
        }
        "pause-then-event" => {
            let first = with_retry(q, b"data: first\n\n".to_vec());
            sse(Out::steps(vec![
                Step::Send(first.into()),
                Step::Sleep(ms(q.num("ms").unwrap_or(3000))),
                Step::Send(Bytes::from_static(b"data: second\n\n")),
            ]))
        }
        "silence" => {
            let mut steps = Vec::new();
            let first = with_retry(q, Vec::new());
            if !first.is_empty() {
                steps.push(Step::Send(first.into()));
            }
            steps.push(Step::Sleep(ms(q.num("ms").unwrap_or(4000))));
            sse(Out::steps(steps))
        }
        "bom-each" => {
            let mut body = b"\xEF\xBB\xBF".to_vec();
            body.extend_from_slice(format!("id: {k}\ndata: c{k}\n\n").as_bytes());
            sse(Out::full(with_retry(q, body)))
        }
        "cross-origin" => {
            let target = format!("http://localhost:{}/script?{}", state.port, q.raw());
            let mut resp = Response::new(Out::empty());
            *resp.status_mut() = StatusCode::FOUND;
            if let Ok(v) = HeaderValue::from_str(&target) {
                resp.headers_mut().insert(LOCATION, v);
            }
            resp
        }
        _ => plain(StatusCode::NOT_FOUND, "unknown scenario\n"),
    }
}
