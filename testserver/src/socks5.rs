//! The SOCKS5 proxy (RFC 1928, user name/password from RFC 1929): the CONNECT command to an
//! IPv4, IPv6 or domain-name target, then a byte tunnel. Only loopback targets are contacted
//! (reply 0x02, "not allowed by ruleset", for anything else); domain names are never resolved.
//!
//! Without configured credentials any user name/password is accepted and recorded; a client
//! offering both "no authentication" and "user name/password" is asked for the latter, so the
//! log shows what it would send.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::log::ProxyEntry;
use crate::proxy::{credentials_ok, loopback};
use crate::routes::State;

const NO_AUTH: u8 = 0x00;
const USER_PASSWORD: u8 = 0x02;
const NO_ACCEPTABLE: u8 = 0xFF;

const SUCCEEDED: u8 = 0x00;
const NOT_ALLOWED: u8 = 0x02;
const REFUSED: u8 = 0x05;
const COMMAND_NOT_SUPPORTED: u8 = 0x07;
const ADDRESS_NOT_SUPPORTED: u8 = 0x08;

/// Serves one client connection; protocol errors and early closes just end it.
pub(crate) async fn serve(mut stream: TcpStream, id: u64, state: Arc<State>) {
    let _ = run(&mut stream, id, &state).await;
}

async fn read_string(s: &mut TcpStream) -> io::Result<String> {
    let len = s.read_u8().await?;
    let mut buf = vec![0u8; usize::from(len)];
    s.read_exact(&mut buf).await?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// A reply; `bound` is the proxy's end of the upstream connection (zeros when none).
async fn reply(s: &mut TcpStream, code: u8, bound: Option<SocketAddr>) -> io::Result<()> {
    let mut out = vec![5, code, 0];
    match bound {
        Some(SocketAddr::V6(a)) => {
            out.push(4);
            out.extend_from_slice(&a.ip().octets());
            out.extend_from_slice(&a.port().to_be_bytes());
        }
        Some(SocketAddr::V4(a)) => {
            out.push(1);
            out.extend_from_slice(&a.ip().octets());
            out.extend_from_slice(&a.port().to_be_bytes());
        }
        None => out.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0]),
    }
    s.write_all(&out).await
}

async fn run(s: &mut TcpStream, id: u64, state: &State) -> io::Result<()> {
    let mut entry = ProxyEntry {
        kind: "socks5".to_owned(),
        conn: id,
        request: String::new(),
        target: String::new(),
        proxy_authorization: None,
        user: None,
        password: None,
        allowed: false,
        status: 0,
        at_ms: state.log.now_ms(),
    };
    if s.read_u8().await? != 5 {
        return Ok(()); // not SOCKS5
    }
    let count = s.read_u8().await?;
    let mut methods = vec![0u8; usize::from(count)];
    s.read_exact(&mut methods).await?;
    let method = if methods.contains(&USER_PASSWORD) {
        USER_PASSWORD
    } else if methods.contains(&NO_AUTH) && state.proxy_auth.is_none() {
        NO_AUTH
    } else {
        NO_ACCEPTABLE
    };
    // Each outcome is recorded before the client hears it, so the log is complete by then.
    if method == NO_ACCEPTABLE {
        entry.status = u16::from(NO_ACCEPTABLE);
        state.proxy_log.record(entry);
        return s.write_all(&[5, method]).await;
    }
    s.write_all(&[5, method]).await?;
    if method == USER_PASSWORD {
        let _version = s.read_u8().await?; // 0x01
        entry.user = Some(read_string(s).await?);
        entry.password = Some(read_string(s).await?);
        if !credentials_ok(state, entry.user.as_deref(), entry.password.as_deref()) {
            entry.status = 1;
            state.proxy_log.record(entry);
            return s.write_all(&[1, 1]).await;
        }
        s.write_all(&[1, 0]).await?;
    }

    let mut head = [0u8; 4];
    s.read_exact(&mut head).await?;
    let [version, command, _reserved, address_type] = head;
    if version != 5 {
        return Ok(());
    }
    let host = match address_type {
        1 => {
            let mut a = [0u8; 4];
            s.read_exact(&mut a).await?;
            Ipv4Addr::from(a).to_string()
        }
        3 => read_string(s).await?,
        4 => {
            let mut a = [0u8; 16];
            s.read_exact(&mut a).await?;
            format!("[{}]", Ipv6Addr::from(a))
        }
        _ => {
            entry.status = u16::from(ADDRESS_NOT_SUPPORTED);
            entry.request = format!("CMD{command} address type {address_type}");
            state.proxy_log.record(entry);
            return reply(s, ADDRESS_NOT_SUPPORTED, None).await;
        }
    };
    let port = s.read_u16().await?;
    entry.target = format!("{host}:{port}");
    entry.request = match command {
        1 => format!("CONNECT {}", entry.target),
        2 => format!("BIND {}", entry.target),
        3 => format!("UDP-ASSOCIATE {}", entry.target),
        n => format!("CMD{n} {}", entry.target),
    };
    let code = if command != 1 {
        COMMAND_NOT_SUPPORTED
    } else if let Some(addr) = loopback(&host, port) {
        match TcpStream::connect(addr).await {
            Ok(mut upstream) => {
                let _ = upstream.set_nodelay(true);
                entry.allowed = true;
                entry.status = u16::from(SUCCEEDED);
                state.proxy_log.record(entry);
                reply(s, SUCCEEDED, upstream.local_addr().ok()).await?;
                tokio::io::copy_bidirectional(s, &mut upstream).await?;
                return Ok(());
            }
            Err(_) => REFUSED,
        }
    } else {
        NOT_ALLOWED
    };
    entry.status = u16::from(code);
    state.proxy_log.record(entry);
    reply(s, code, None).await
}
