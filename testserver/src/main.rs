//! `testserver [--port N] [--threads N] [--exit-on-eof]`: serves the scenario server on
//! 127.0.0.1 until killed, or until stdin closes with `--exit-on-eof`. The first stdout line is
//! `listening on http://127.0.0.1:PORT`.

use std::io::{Read, Write};

const USAGE: &str = "usage: testserver [--port N] [--threads N] [--exit-on-eof]\n\
    Serves the SSE scenario server on 127.0.0.1 (port 0 = ephemeral) until killed.\n\
    --exit-on-eof  also exit when standard input closes\n\
    --threads N    tokio worker threads (default 2)\n";

fn main() {
    let mut port: u16 = 0;
    let mut threads: usize = 2;
    let mut exit_on_eof = false;
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
            "--help" | "-h" => {
                print!("{USAGE}");
                return;
            }
            other => fail(&format!("unknown argument {other:?}")),
        }
    }

    let listeners = testserver::bind(port).unwrap_or_else(|e| fail(&format!("cannot bind: {e}")));
    let port = listeners[0].local_addr().map(|a| a.port()).unwrap_or(port);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&format!("cannot start the runtime: {e}")));

    if exit_on_eof {
        std::thread::spawn(|| {
            let mut sink = [0u8; 1024];
            let mut stdin = std::io::stdin().lock();
            while let Ok(n) = stdin.read(&mut sink) {
                if n == 0 {
                    break;
                }
            }
            std::process::exit(0);
        });
    }

    rt.block_on(async move {
        let _tasks = testserver::serve(listeners, port)
            .unwrap_or_else(|e| fail(&format!("cannot listen: {e}")));
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://127.0.0.1:{port}");
        let _ = out.flush();
        drop(out);
        std::future::pending::<()>().await;
    });
}

fn fail(msg: &str) -> ! {
    eprintln!("testserver: {msg}\n{USAGE}");
    std::process::exit(2);
}
