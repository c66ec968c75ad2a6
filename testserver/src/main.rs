//! `testserver [--port N] [--threads N] [--exit-on-eof] [--tls] [--proxies] [--all] ...`: serves
//! the scenario server on 127.0.0.1 until killed (SIGTERM/SIGINT), or until stdin closes with
//! `--exit-on-eof`. The first stdout line is `listening on http://127.0.0.1:PORT`; with `--tls`
//! or `--proxies` more lines follow, the last being `ready` (see the README).

use std::io::{Read, Write};

const USAGE: &str = "usage: testserver [--port N] [--threads N] [--exit-on-eof] [--tls] [--proxies] [--all]\n\
    \x20                 [--cert-dir DIR] [--proxy-auth USER:PASS] [--max-concurrent-streams N]\n\
    \x20                 [--max-load-streams N] [--max-load-secs S]\n\
    Serves the SSE scenario server on 127.0.0.1 (port 0 = ephemeral) until killed.\n\
    --exit-on-eof               also exit when standard input closes\n\
    --threads N                 tokio worker threads (default 2)\n\
    --tls                       also the TLS (ALPN h2, http/1.1) and mTLS listeners\n\
    --proxies                   also the HTTP, HTTPS and SOCKS5 proxies (loopback targets only)\n\
    --all                       --tls and --proxies\n\
    --cert-dir DIR              write ca.pem, client.pem, client.key there (default: a temp dir,\n\
    \x20                           removed at exit)\n\
    --proxy-auth USER:PASS      the proxies require these credentials (default: accept any)\n\
    --max-concurrent-streams N  HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS (default 200)\n\
    --max-load-streams N        at most N /load/* streams open at once (default 20000)\n\
    --max-load-secs S           a /load/* stream ends after S seconds (default 600)\n";

fn main() {
    let mut port: u16 = 0;
    let mut threads: usize = 2;
    let mut exit_on_eof = false;
    let (mut tls, mut proxies) = (false, false);
    let mut cert_dir = None;
    let mut proxy_auth = None;
    let mut max_streams = None;
    let mut max_load_streams = testserver::DEFAULT_MAX_STREAMS;
    let mut max_load_secs = testserver::DEFAULT_MAX_SECS;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = |what: &str| -> String {
            inline
                .clone()
                .or_else(|| args.next())
                .unwrap_or_else(|| fail(&format!("{what} needs a value")))
        };
        match name.as_str() {
            "--port" | "-p" => {
                port = value("--port").parse().unwrap_or_else(|_| fail("--port needs a number"))
            }
            "--threads" => {
                threads =
                    value("--threads").parse().unwrap_or_else(|_| fail("--threads needs a number"))
            }
            "--exit-on-eof" => exit_on_eof = true,
            "--tls" => tls = true,
            "--proxies" => proxies = true,
            "--all" => (tls, proxies) = (true, true),
            "--cert-dir" => cert_dir = Some(value("--cert-dir")),
            "--proxy-auth" => {
                let v = value("--proxy-auth");
                let Some((user, password)) = v.split_once(':') else {
                    fail("--proxy-auth needs USER:PASS")
                };
                proxy_auth = Some((user.to_owned(), password.to_owned()));
            }
            "--max-concurrent-streams" => {
                let n: u32 = value("--max-concurrent-streams")
                    .parse()
                    .unwrap_or_else(|_| fail("--max-concurrent-streams needs a number"));
                max_streams = Some(n);
            }
            "--max-load-streams" => {
                max_load_streams = value("--max-load-streams")
                    .parse()
                    .unwrap_or_else(|_| fail("--max-load-streams needs a number"))
            }
            "--max-load-secs" => {
                max_load_secs = value("--max-load-secs")
                    .parse()
                    .unwrap_or_else(|_| fail("--max-load-secs needs a number"))
            }
            "--help" | "-h" => {
                print!("{USAGE}");
                return;
            }
            other => fail(&format!("unknown argument {other:?}")),
        }
    }

    let mut options = testserver::Options::new()
        .port(port)
        .threads(threads.max(1))
        .max_load_streams(max_load_streams)
        .max_load_secs(max_load_secs);
    if tls {
        options = options.tls();
    }
    if proxies {
        options = options.proxies();
    }
    if let Some(dir) = cert_dir {
        options = options.cert_dir(dir);
    }
    if let Some((user, password)) = proxy_auth {
        options = options.proxy_auth(user, password);
    }
    if let Some(n) = max_streams {
        options = options.max_concurrent_streams(n);
    }
    let server = testserver::Server::start_with(options)
        .unwrap_or_else(|e| fail(&format!("cannot start: {e}")));

    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on http://127.0.0.1:{}", server.port());
    if tls || proxies {
        if tls {
            let _ = writeln!(out, "tls on {}", server.tls_url("").trim_end_matches('/'));
            let _ = writeln!(out, "mtls on {}", server.mtls_url("").trim_end_matches('/'));
        }
        if proxies {
            let _ = writeln!(out, "http-proxy on {}", server.http_proxy_url());
            let _ = writeln!(out, "https-proxy on {}", server.https_proxy_url());
            let _ = writeln!(out, "socks5-proxy on {}", server.socks5_url());
        }
        if let Some(certs) = server.certs() {
            let _ = writeln!(out, "ca-cert at {}", certs.ca_path.display());
            let _ = writeln!(out, "client-cert at {}", certs.client_cert_path.display());
            let _ = writeln!(out, "client-key at {}", certs.client_key_path.display());
        }
        let _ = writeln!(out, "ready");
    }
    let _ = out.flush();
    drop(out);

    wait_for_the_end(exit_on_eof);
    drop(server); // stops the listeners and removes a temp cert dir
    std::process::exit(0);
}

/// Returns on SIGTERM or SIGINT, or when stdin closes if `exit_on_eof`.
fn wait_for_the_end(exit_on_eof: bool) {
    let (eof_tx, eof_rx) = tokio::sync::oneshot::channel::<()>();
    if exit_on_eof {
        std::thread::spawn(move || {
            let mut sink = [0u8; 1024];
            let mut stdin = std::io::stdin().lock();
            while let Ok(n) = stdin.read(&mut sink) {
                if n == 0 {
                    break;
                }
            }
            let _ = eof_tx.send(());
        });
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&format!("cannot start the runtime: {e}")));
    rt.block_on(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())
            .unwrap_or_else(|e| fail(&format!("cannot watch SIGTERM: {e}")));
        let eof = async move {
            if exit_on_eof {
                let _ = eof_rx.await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = eof => {}
        }
    });
}

fn fail(msg: &str) -> ! {
    eprintln!("testserver: {msg}\n{USAGE}");
    std::process::exit(2);
}
