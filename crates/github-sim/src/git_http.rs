//! Git's smart HTTP protocol (read-only) for the organization's git repositories, through
//! `git http-backend` run as a CGI per request: `GET {url}/{org}/{name}.git/info/refs?service=
//! git-upload-pack` and `POST {url}/{org}/{name}.git/git-upload-pack`, protocol v0 and v2
//! (`Git-Protocol` header), gzip request bodies, shallow fetches and fetching any reachable
//! commit by sha. Credentials as GitHub takes them for git over HTTPS: `Authorization: Basic
//! base64(USER:TOKEN)` (any user name) or `Bearer TOKEN`; none gets 401 with `WWW-Authenticate:
//! Basic realm="GitHub"`, an unknown token 401, an unknown repository (or one without git
//! content) 404 `Repository not found.`, a push 403. Git requests spend no REST or GraphQL
//! budget; the ledger counts them.

use crate::server::{lock, SimState};
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use std::io::Read;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// Largest request body taken (a fetch's wants and haves).
const MAX_BODY: usize = 64 << 20;

fn plain(status: StatusCode, text: &str) -> Response {
    let mut r = (status, format!("{text}\n")).into_response();
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn unauthorized() -> Response {
    let mut r = plain(StatusCode::UNAUTHORIZED, "Invalid username or token.");
    r.headers_mut().insert(
        "www-authenticate",
        HeaderValue::from_static("Basic realm=\"GitHub\""),
    );
    r
}

/// The token of a git request: the password of Basic credentials (or the user name when the
/// password is empty, as some clients send a token), or a Bearer token.
pub(crate) fn git_token(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("authorization")?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    let rest = rest.trim();
    let token = if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        match text.split_once(':') {
            Some((user, "")) => user.to_string(),
            Some((_, password)) => password.to_string(),
            None => text,
        }
    } else if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token") {
        rest.to_string()
    } else {
        return None;
    };
    (!token.is_empty()).then_some(token)
}

/// `/{org}/{repo}/{*rest}`: the smart HTTP endpoints of a served repository.
pub(crate) async fn git_endpoint(
    State(state): State<Arc<SimState>>,
    Path((org, repo, rest)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    let refuse = |r: Response| {
        lock(&state.ledger).git_refused += 1;
        r
    };
    let service = req.uri().query().unwrap_or("").to_string();
    let is_refs = rest == "info/refs";
    let is_upload = rest == "git-upload-pack";
    if !(is_refs || is_upload || rest == "git-receive-pack") {
        return refuse(plain(StatusCode::NOT_FOUND, "Not Found"));
    }
    let Some(token) = git_token(req.headers()) else {
        return refuse(unauthorized());
    };
    let key = match state.budget_key(&token) {
        Ok(k) => k,
        Err(_) => return refuse(unauthorized()),
    };
    let name = repo.strip_suffix(".git").unwrap_or(&repo).to_string();
    let world = state.snapshot();
    let found = world
        .repository(&name)
        .filter(|(_, r)| r.git_head.is_some() && org.eq_ignore_ascii_case(&world.org.login))
        .map(|(_, r)| (r.id, r.name.clone()));
    let (Some((id, name)), Some(store)) = (found, state.git.clone()) else {
        return refuse(plain(StatusCode::NOT_FOUND, "Repository not found."));
    };
    let wants_receive = rest == "git-receive-pack"
        || (is_refs && service.split('&').any(|p| p == "service=git-receive-pack"));
    if wants_receive {
        return refuse(plain(
            StatusCode::FORBIDDEN,
            "Write access to repository not granted.",
        ));
    }
    let method = req.method().as_str().to_string();
    if (is_refs && method != "GET") || (is_upload && method != "POST") {
        return refuse(plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"));
    }
    let (parts, body) = req.into_parts();
    let header = |n: &str| {
        parts
            .headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header("content-type");
    let encoding = header("content-encoding");
    let protocol = header("git-protocol");
    drop(parts);
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "Request too large"),
    };
    {
        let mut l = lock(&state.ledger);
        *l.git_requests_by_token.entry(key).or_default() += 1;
        if is_refs {
            l.git_info_refs += 1;
        } else {
            l.git_upload_packs += 1;
            if asks_for_objects(&body, encoding.as_deref()) {
                *l.git_fetches.entry(name).or_default() += 1;
            }
        }
    }
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", store.root())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_PROJECT_ROOT", store.root())
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env(
            "PATH_INFO",
            format!("/{}/{rest}", crate::git::GitStore::dir_name(id)),
        )
        .env("QUERY_STRING", &service)
        .env("REQUEST_METHOD", &method)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("CONTENT_LENGTH", body.len().to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(t) = content_type {
        cmd.env("CONTENT_TYPE", t);
    }
    if let Some(e) = encoding {
        cmd.env("HTTP_CONTENT_ENCODING", e);
    }
    if let Some(p) = protocol {
        cmd.env("GIT_PROTOCOL", p);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(_) => return plain(StatusCode::INTERNAL_SERVER_ERROR, "git is not available"),
    };
    if let Some(mut stdin) = child.stdin.take() {
        tokio::spawn(async move {
            let _ = stdin.write_all(&body).await;
            let _ = stdin.shutdown().await;
        });
    }
    let Some(stdout) = child.stdout.take() else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "git http-backend");
    };
    let mut reader = tokio::io::BufReader::with_capacity(64 << 10, stdout);
    // The CGI headers, up to an empty line.
    let mut status = StatusCode::OK;
    let mut headers = HeaderMap::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("status") {
            if let Some(code) = v
                .split(' ')
                .next()
                .and_then(|c| c.parse::<u16>().ok())
                .and_then(|c| StatusCode::from_u16(c).ok())
            {
                status = code;
            }
        } else if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(k.trim().as_bytes()),
            HeaderValue::from_str(v),
        ) {
            headers.append(name, value);
        }
    }
    // The body, streamed; the child lives as long as the stream.
    let stream = futures::stream::unfold((reader, child), |(mut reader, mut child)| async move {
        let mut buf = vec![0u8; 64 << 10];
        match reader.read(&mut buf).await {
            Ok(0) => {
                let _ = child.wait().await;
                None
            }
            Ok(n) => {
                buf.truncate(n);
                Some((
                    Ok::<_, std::io::Error>(axum::body::Bytes::from(buf)),
                    (reader, child),
                ))
            }
            Err(e) => Some((Err(e), (reader, child))),
        }
    });
    let mut r = Response::new(Body::from_stream(stream));
    *r.status_mut() = status;
    *r.headers_mut() = headers;
    r
}

/// Whether an upload-pack request asks for objects (it holds a `want`), reading a gzip body
/// as the client sent it.
fn asks_for_objects(body: &[u8], encoding: Option<&str>) -> bool {
    let gz = encoding
        .is_some_and(|e| e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip"));
    let plain;
    let bytes: &[u8] = if gz {
        let mut out = Vec::new();
        let _ = flate2::read::GzDecoder::new(body)
            .take(MAX_BODY as u64)
            .read_to_end(&mut out);
        plain = out;
        &plain
    } else {
        body
    };
    bytes.windows(5).any(|w| w == b"want ")
}
