//! `/scenario/NAME`: the named scenarios, from the spec's test list and from production faults
//! (resets, silent servers, lying lengths, redirect loops, instant closes).

use bytes::Bytes;
use hyper::header::{CONNECTION, CONTENT_LENGTH, HeaderValue, LOCATION};
use hyper::{Response, StatusCode};

use crate::body::{Out, Step};
use crate::query::Query;
use crate::routes::{Ctx, ms, no_content, plain, sse};

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
pub(crate) async fn scenario(ctx: &Ctx<'_>, name: &str, q: &Query, k: usize) -> Response<Out> {
    // Connections allowed before the scenario answers 204 (counted per `t`, per path).
    let limit = match name {
        "bom-each" => 3,
        "drop" | "reset" => 2,
        "cross-origin" | "no-answer" | "redirect-loop" | "instant-close" => usize::MAX,
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
            // Back to the listener the request came on: same scheme and port, other host.
            let (scheme, port) = (ctx.conn.scheme, ctx.conn.port);
            let target = format!("{scheme}://localhost:{port}/script?{}", q.raw());
            let mut resp = Response::new(Out::empty());
            *resp.status_mut() = StatusCode::FOUND;
            if let Ok(v) = HeaderValue::from_str(&target) {
                resp.headers_mut().insert(LOCATION, v);
            }
            resp
        }
        "reset" => {
            if k == 1 {
                // Cut inside an event and inside the two bytes of "é" (C3 A9), then RST.
                let body = with_retry(q, b"data: one\n\ndata: caf\xC3".to_vec());
                let conn = ctx.conn.clone();
                sse(Out::steps(vec![
                    Step::Send(body.into()),
                    Step::Sleep(ms(50)),
                    Step::Reset(conn),
                ]))
            } else {
                sse(Out::full(&b"data: two\n\n"[..]))
            }
        }
        "no-answer" => {
            // No status, no headers: hyper drops this future when the client goes away.
            std::future::pending::<()>().await;
            unreachable!("a pending future never completes")
        }
        "short-body" => {
            let body = with_retry(q, b"data: short\n\n".to_vec());
            let declared = q.num("declared").unwrap_or(body.len() as u64 + 100);
            let mut resp =
                sse(Out::steps(vec![Step::Send(body.into()), Step::Sleep(ms(50)), Step::Abort]));
            resp.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(declared));
            resp
        }
        "redirect-loop" => {
            let code = q
                .num("code")
                .and_then(|c| u16::try_from(c).ok())
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::FOUND);
            let target = match q.raw() {
                "" => "/scenario/redirect-loop".to_owned(),
                raw => format!("/scenario/redirect-loop?{raw}"),
            };
            let mut resp = Response::new(Out::empty());
            *resp.status_mut() = code;
            if let Ok(v) = HeaderValue::from_str(&target) {
                resp.headers_mut().insert(LOCATION, v);
            }
            resp
        }
        "instant-close" => {
            let retry = q.num("retry").unwrap_or(0);
            let mut resp = sse(Out::full(format!("retry: {retry}\n")));
            // HTTP/1.1: close the TCP connection too, so every reconnection is a new one.
            // (HTTP/2 has no such header; the stream ends, the connection stays.)
            if ctx.version < hyper::Version::HTTP_2 {
                resp.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
            }
            resp
        }
        _ => plain(StatusCode::NOT_FOUND, "unknown scenario\n"),
    }
}
