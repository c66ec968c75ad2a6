//! Request routing and the endpoints. The fault scenarios live in `scenario.rs`.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue, LOCATION};
use hyper::{Request, Response, StatusCode};

use crate::body::{Out, Step};
use crate::conn::{ConnInfo, Counters};
use crate::log::{DoneGuard, Entry, Log, ProxyLog, proxy_json, to_json};
use crate::query::Query;
use crate::stream::StreamGen;

/// What every connection's service shares.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) log: Arc<Log>,
    pub(crate) proxy_log: Arc<ProxyLog>,
    pub(crate) conns: Counters,
    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`; `None` = hyper's default (200).
    pub(crate) max_concurrent_streams: Option<u32>,
    /// The credentials the proxies require, if any.
    pub(crate) proxy_auth: Option<(String, String)>,
    /// The `/load/*` streams.
    pub(crate) load: Arc<crate::load::Hub>,
}

impl State {
    pub(crate) fn new(
        log: Arc<Log>,
        max_concurrent_streams: Option<u32>,
        proxy_auth: Option<(String, String)>,
        load: crate::load::Hub,
    ) -> Arc<State> {
        Arc::new(State {
            log,
            proxy_log: Arc::new(ProxyLog::default()),
            conns: Counters::default(),
            max_concurrent_streams,
            proxy_auth,
            load: Arc::new(load),
        })
    }
}

/// The request as the routes see it.
pub(crate) struct Ctx<'a> {
    pub(crate) conn: &'a Arc<ConnInfo>,
    pub(crate) version: hyper::Version,
}

pub(crate) const SSE: &str = "text/event-stream";

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(crate) fn plain(status: StatusCode, text: &str) -> Response<Out> {
    let mut resp = Response::new(Out::full(text.to_owned()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

pub(crate) fn no_content() -> Response<Out> {
    let mut resp = Response::new(Out::empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp
}

pub(crate) fn sse(body: Out) -> Response<Out> {
    let mut resp = Response::new(body);
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(SSE));
    resp.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

fn json(body: String) -> Response<Out> {
    let mut resp = Response::new(Out::full(body));
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// The hyper service: records the request under `t`, then routes it.
pub(crate) async fn handle(
    state: Arc<State>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Result<Response<Out>, Infallible> {
    let at_ms = state.log.now_ms();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let query = Query::parse(parts.uri.query());
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();

    // The log readers are not recorded: reading would change what they count.
    let token = query.text("t").filter(|_| path != "/log" && path != "/connections");
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
            version: format!("{:?}", parts.version),
            conn: conn.id,
            tls: conn.tls,
            client_cert: conn.client_cert,
        };
        let (index, nth) = state.log.record(&token, entry);
        k = nth;
        done = Some(Arc::new(DoneGuard { log: state.log.clone(), token, index }));
    }

    let ctx = Ctx { conn: &conn, version: parts.version };
    let resp = match path.as_str() {
        "/log" => log(&state, &query),
        "/connections" => connections(&state, &query),
        "/proxy-log" => json(proxy_json(&state.proxy_log.entries(query.text("user").as_deref()))),
        "/script" => script(&query, k).await,
        "/redirect" => redirect(&query),
        "/stream" => sse(Out::generated(StreamGen::from_query(&query))),
        "/llm" => llm(&query),
        "/load/stream" => crate::load::stream(&state, &ctx, &query),
        "/load/broadcast" => crate::load::broadcast(&state, &parts.method, &query),
        "/load/rate" => crate::load::rate(&state, &query),
        "/load/stats" => crate::load::stats(&state),
        "/resume" => {
            let id = parts.headers.get("last-event-id").map(|v| v.as_bytes());
            crate::resume::resume(&ctx, &query, k, id)
        }
        p => match p.strip_prefix("/scenario/") {
            Some(name) => crate::scenario::scenario(&ctx, name, &query, k).await,
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
    json(to_json(&state.log.entries(&token)))
}

/// `GET /connections[?t=TOKEN]`: connection counts, overall and for the requests under TOKEN.
fn connections(state: &State, q: &Query) -> Response<Out> {
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = format!(
        "{{\"accepted\":{},\"open\":{}",
        state.conns.accepted.load(Relaxed),
        state.conns.open.load(Relaxed)
    );
    if let Some(token) = q.text("t") {
        let entries = state.log.entries(&token);
        let mut ids: Vec<u64> = Vec::new();
        for e in &entries {
            if !ids.contains(&e.conn) {
                ids.push(e.conn);
            }
        }
        let _ =
            write!(out, ",\"requests\":{},\"connections\":{},\"ids\":[", entries.len(), ids.len());
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{id}");
        }
        out.push(']');
    }
    out.push_str("}\n");
    json(out)
}

/// `ANY /llm?tokens=N&ms=MS`: an OpenAI-style streamed chat completion.
fn llm(q: &Query) -> Response<Out> {
    let tokens = q.num("tokens").unwrap_or(16).min(1_000_000);
    let pause = q.num("ms").unwrap_or(0);
    let mut steps = Vec::new();
    for i in 1..=tokens {
        if pause > 0 && i > 1 {
            steps.push(Step::Sleep(ms(pause)));
        }
        let event =
            format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"tok{i} \"}}}}]}}\n\n");
        steps.push(Step::Send(Bytes::from(event)));
    }
    if pause > 0 && tokens > 0 {
        steps.push(Step::Sleep(ms(pause)));
    }
    steps.push(Step::Send(Bytes::from_static(b"data: [DONE]\n\n")));
    sse(Out::steps(steps))
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
