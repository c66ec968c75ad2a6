//! Real HTTP checks of the scenario server, through a plain TCP client (`common.rs`).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{get, log_until, request};
use testserver::{Server, TRICKY};

const SHORT: Duration = Duration::from_millis(400);

#[test]
fn script_sends_exactly_the_asked_bytes() {
    let s = Server::start();
    let r = get(s.port(), "/script?c1=data%3A%20a%FFb%00c%0D%0Adata:+x%2B%0A%0A");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert!(r.complete, "{r:?}");
    assert_eq!(r.body, b"data: a\xFFb\x00c\r\ndata: x+\n\n");
}

#[test]
fn script_connection_numbers_statuses_and_headers() {
    let s = Server::start();
    let q = "/script?t=conn&c1=data:1%0A%0A&c2=oops&s2=500&ct2=none&c3=x&ct3=text/plain%3B%20charset%3Dutf-8\
             &hdr3=X-One%3A%20a%20b&hdr3=X-Two:c&c4=&s4=307&loc4=%2Fscript%3Ft%3Dother";
    let r1 = get(s.port(), q);
    assert_eq!((r1.status, r1.body.as_slice()), (200, &b"data:1\n\n"[..]));
    let r2 = get(s.port(), q);
    assert_eq!(r2.status, 500);
    assert_eq!(r2.header("content-type"), None);
    assert_eq!(r2.body, b"oops");
    let r3 = get(s.port(), q);
    assert_eq!(r3.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r3.header("x-one"), Some("a b"));
    assert_eq!(r3.header("x-two"), Some("c"));
    let r4 = get(s.port(), q);
    assert_eq!(r4.status, 307);
    assert_eq!(r4.header("location"), Some("/script?t=other"));
    let r5 = get(s.port(), q);
    assert_eq!(r5.status, 204, "no c5: the client is told to stop");
    assert!(r5.body.is_empty());
    // Without c1 the first connection is an empty 200 stream.
    let empty = get(s.port(), "/script?t=empty");
    assert_eq!((empty.status, empty.body.len(), empty.complete), (200, 0, true));
}

#[test]
fn log_records_requests_in_order_but_not_itself() {
    let s = Server::start();
    let r = request(s.port(), "POST", "/script?t=lg&c1=x&x=%41", b"{\"q\":1}", SHORT, usize::MAX);
    assert_eq!(r.status, 200);
    get(s.port(), "/nowhere?t=lg&n=2");
    get(s.port(), "/log?t=lg");
    let log = log_until(s.port(), "lg", |l| l.matches("\"done_ms\":null").count() == 0);
    assert!(log.starts_with('['), "{log}");
    let first = log.find("\"method\":\"POST\",\"path\":\"/script\",\"query\":\"t=lg&c1=x&x=%41\"");
    let second = log.find("\"method\":\"GET\",\"path\":\"/nowhere\",\"query\":\"t=lg&n=2\"");
    assert!(first.is_some() && second.is_some() && first < second, "{log}");
    assert!(log.contains("\"accept\":\"text/event-stream\""), "{log}");
    assert!(log.contains(&format!("\"host\":\"127.0.0.1:{}\"", s.port())), "{log}");
    assert!(log.contains("\"body\":\"{\\\"q\\\":1}\""), "{log}");
    assert!(!log.contains("/log"), "{log}");
    assert_eq!(log.matches("\"at_ms\":").count(), 2);
    let entries = s.requests("lg");
    assert_eq!(entries.len(), 2);
    assert_eq!((entries[0].method.as_str(), entries[0].body.as_str()), ("POST", "{\"q\":1}"));
    assert_eq!(entries[1].path, "/nowhere");
    assert!(entries[0].at_ms <= entries[1].at_ms);
    assert_eq!(get(s.port(), "/log?t=unknown").body, b"[\n]\n");
    assert_eq!(get(s.port(), "/nothing").status, 404);
}

#[test]
fn redirect_sends_the_code_and_target() {
    let s = Server::start();
    for code in [301, 302, 303, 307, 308] {
        let r = get(s.port(), &format!("/redirect?t=rd&code={code}&to=%2Fscript%3Fc1%3Dx%26t%3Dy"));
        assert_eq!(r.status, code);
        assert_eq!(r.header("location"), Some("/script?c1=x&t=y"));
    }
    let log = log_until(s.port(), "rd", |l| l.matches("/redirect").count() == 5);
    assert_eq!(log.matches("\"path\":\"/redirect\"").count(), 5, "{log}");
}

#[test]
fn drip_writes_one_byte_at_a_time() {
    let s = Server::start();
    let r = get(s.port(), "/script?c1=data%3A%20dripped%0A%0A&drip=1");
    assert_eq!(r.body, b"data: dripped\n\n");
    assert_eq!(r.chunks.len(), r.body.len(), "one chunk per byte");
    assert!(r.reads > 2, "bytes arrive over many reads: {}", r.reads);
    assert!(r.elapsed >= Duration::from_millis(14), "1 ms between bytes");
}

#[test]
fn split_delay_bodydelay_hold_and_abort() {
    let s = Server::start();
    let r = get(s.port(), "/script?c1=data%3A1%0D%0A%0D%0A&split1=7,3,99&pause=30");
    assert_eq!(r.chunks, vec![b"dat".to_vec(), b"a:1\r".to_vec(), b"\n\r\n".to_vec()]);
    assert!(r.elapsed >= Duration::from_millis(60));

    let r = get(s.port(), "/script?c1=x&delay1=150&bodydelay1=100");
    assert!(r.elapsed >= Duration::from_millis(250) && r.body == b"x", "{r:?}");
    assert!(r.head_at >= Duration::from_millis(150), "{r:?}");
    let r = get(s.port(), "/script?c1=x&bodydelay1=1000");
    assert!(r.head_at < Duration::from_millis(900), "head before the body delay: {r:?}");

    let r = request(s.port(), "GET", "/script?t=hold&c1=data:h%0A%0A&hold1=1", b"", SHORT, 99);
    assert!(r.idle && !r.complete && r.body == b"data:h\n\n", "{r:?}");
    drop(r);
    // The client went away: the server notices and the log says when it was done.
    let log = log_until(s.port(), "hold", |l| !l.contains("\"done_ms\":null"));
    assert!(!log.contains("\"done_ms\":null"), "{log}");

    let r = get(s.port(), "/script?c1=data:a%0A%0Adata:partial&abort1=1");
    assert!(r.eof && !r.complete && r.body == b"data:a\n\ndata:partial", "{r:?}");

    let r = request(s.port(), "GET", "/script?c1=data:cl%0A%0A&cl1=1", b"", SHORT, usize::MAX);
    assert_eq!(r.header("content-length"), Some("9"));
    assert!(r.complete && r.body == b"data:cl\n\n", "{r:?}");
}

#[test]
fn stream_produces_the_right_count() {
    let s = Server::start();
    let r = get(s.port(), "/stream?count=1000&size=40&type=tick&id=1&retry=250");
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert!(r.complete);
    let text = String::from_utf8(r.body).unwrap();
    assert!(text.starts_with("retry: 250\nevent: tick\nid: 1\ndata: {\"seq\":1,\"payload\":\"x"));
    let events: Vec<&str> = text["retry: 250\n".len()..].split_terminator("\n\n").collect();
    assert_eq!(events.len(), 1000);
    for (i, e) in events.iter().enumerate() {
        let seq = i + 1;
        let data = e.lines().nth(2).unwrap().strip_prefix("data: ").unwrap();
        assert_eq!(data.len(), 40, "{e}");
        assert!(e.starts_with(&format!("event: tick\nid: {seq}\ndata: {{\"seq\":{seq},")), "{e}");
    }

    let r = get(s.port(), "/stream?count=300&chunk=event");
    assert_eq!(r.chunks.len(), 300);
    let r = request(s.port(), "GET", "/stream?count=0&size=1000", b"", SHORT, 1 << 20);
    assert!(r.body.len() >= 1 << 20 && !r.complete);
}

#[test]
fn stream_rate_paces_events() {
    let s = Server::start();
    let r = get(s.port(), "/stream?count=21&rate=200");
    assert_eq!(String::from_utf8(r.body).unwrap().matches("data: ").count(), 21);
    assert!(r.elapsed >= Duration::from_millis(95), "{:?}", r.elapsed);
}

#[test]
fn scenarios_send_their_bytes() {
    let s = Server::start();
    let p = s.port();
    let tricky = get(p, "/scenario/tricky?t=tr");
    assert_eq!(tricky.body, TRICKY);
    assert_eq!(get(p, "/scenario/tricky?t=tr").status, 204, "second connection is told to stop");
    let dripped = get(p, "/scenario/tricky?drip=1");
    assert_eq!((dripped.body.as_slice(), dripped.chunks.len()), (TRICKY, TRICKY.len()));
    let with_retry = get(p, "/scenario/tricky?retry=100").body;
    assert!(with_retry.starts_with(b"\xEF\xBB\xBFretry: 100\ndata: "));

    let wpt = get(p, "/scenario/wpt-comments").body;
    let x = "x".repeat(2048);
    let want = format!("data:1\r:\0\n:\r\ndata:2\n:{x}\rdata:3\n:data:fail\r:{x}\ndata:4\n\n");
    assert_eq!(wpt, want.as_bytes());

    let long = get(p, "/scenario/long-line?size=1048576").body;
    assert_eq!(long.len(), 6 + 1048576 + 2);
    assert!(long.starts_with(b"data: xxx") && long.ends_with(b"x\n\n"));
    let comment = get(p, "/scenario/long-comment?size=1000").body;
    assert_eq!(comment.len(), 1001 + 14);
    assert!(comment.starts_with(b":xx") && comment.ends_with(b"x\ndata: after\n\n"));

    let many = String::from_utf8(get(p, "/scenario/many?count=500").body).unwrap();
    assert!(
        many.starts_with("id: 1\ndata: 1\n\nid: 2\n") && many.ends_with("id: 500\ndata: 500\n\n")
    );
    assert_eq!(many.matches("\n\n").count(), 500);

    let line = request(p, "GET", "/scenario/endless-line", b"", SHORT, 1 << 20);
    assert!(line.body.starts_with(b"data: xxx") && !line.body.contains(&b'\n'));
    let ev = request(p, "GET", "/scenario/endless-event", b"", SHORT, 1 << 20);
    assert!(ev.body.starts_with(b"data: xx") && !ev.body.windows(2).any(|w| w == b"\n\n"));
    assert_eq!(ev.body[1023], b'\n');

    assert_eq!(get(p, "/scenario/no-such-thing").status, 404);
}

#[test]
fn scenarios_drop_content_length_bom_each_cross_origin() {
    let s = Server::start();
    let p = s.port();
    let drop1 = get(p, "/scenario/drop?t=dr");
    assert!(
        drop1.eof && !drop1.complete && drop1.body == b"data: one\n\ndata: partial",
        "{drop1:?}"
    );
    assert_eq!(get(p, "/scenario/drop?t=dr").body, b"data: two\n\n");
    assert_eq!(get(p, "/scenario/drop?t=dr").status, 204);

    let cl = request(p, "GET", "/scenario/content-length?t=cl", b"", SHORT, usize::MAX);
    assert!(cl.complete && !cl.eof && cl.body == b"data: cl\n\n", "{cl:?}");
    assert_eq!(cl.header("content-length"), Some("10"));
    assert_eq!(get(p, "/scenario/content-length?t=cl").status, 204);

    for n in 1..=3 {
        let r = get(p, "/scenario/bom-each?t=bom");
        assert_eq!(r.body, format!("\u{feff}id: {n}\ndata: c{n}\n\n").as_bytes());
    }
    assert_eq!(get(p, "/scenario/bom-each?t=bom").status, 204);

    let r = get(p, "/scenario/cross-origin?t=co&c1=data%3A%20x%0A%0A");
    assert_eq!(r.status, 302);
    let want = format!("http://localhost:{p}/script?t=co&c1=data%3A%20x%0A%0A");
    assert_eq!(r.header("location"), Some(want.as_str()));
}

#[test]
fn timed_scenarios() {
    let s = Server::start();
    let r = request(
        s.port(),
        "GET",
        "/scenario/pause-then-event?ms=300",
        b"",
        Duration::from_secs(5),
        999,
    );
    assert_eq!(r.body, b"data: first\n\ndata: second\n\n");
    assert_eq!(r.chunks.len(), 2);
    assert!(r.elapsed >= Duration::from_millis(300));
    let r = request(s.port(), "GET", "/scenario/silence?ms=300", b"", Duration::from_secs(5), 999);
    assert!(r.complete && r.body.is_empty() && r.elapsed >= Duration::from_millis(300));
}

#[tokio::test]
async fn works_inside_an_async_test() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Server::start();
    let mut c = tokio::net::TcpStream::connect(("127.0.0.1", s.port())).await.unwrap();
    c.write_all(b"GET /script?c1=hi HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).await.unwrap();
    assert!(out.ends_with(b"\r\n\r\n2\r\nhi\r\n0\r\n\r\n"), "{}", String::from_utf8_lossy(&out));
    assert_eq!(s.url("/x"), format!("http://127.0.0.1:{}/x", s.port()));
}

#[test]
fn binary_prints_its_url_and_exits_when_stdin_closes() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_testserver"))
        .arg("--exit-on-eof")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port: u16 =
        line.trim().strip_prefix("listening on http://127.0.0.1:").unwrap().parse().unwrap();
    assert_eq!(get(port, "/script?c1=ok").body, b"ok");
    child.stdin.take().unwrap().flush().unwrap(); // dropping it closes stdin
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("testserver did not exit when stdin closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
