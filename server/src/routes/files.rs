//! Static files at `/`: from a directory ([`Www::Dir`]: `--www DIR`, or `./www`), or the
//! demo page built into the binary ([`Www::Embedded`], without its wasm package, which the
//! page then says how to build).

use std::fmt;
use std::path::{Component, Path, PathBuf};

use crate::config::Www;
use crate::http::{Body, Response, Status};

/// The page's own files, compiled in, for a binary run away from the repository.
const EMBEDDED: [(&str, &[u8]); 4] = [
    ("index.html", include_bytes!("../../../www/index.html")),
    ("app.js", include_bytes!("../../../www/app.js")),
    (
        "ssecast-client.js",
        include_bytes!("../../../www/ssecast-client.js"),
    ),
    ("style.css", include_bytes!("../../../www/style.css")),
];

/// Answers `GET url_path` (the path as sent, percent-encoded) from `www`.
pub(super) async fn serve(www: &Www, url_path: &str) -> Response {
    let not_found = || Response::text(Status::NOT_FOUND, NotFound);
    match www {
        Www::Embedded => {
            let Ok(path) = resolve(Path::new(""), url_path) else {
                return not_found();
            };
            let name = path.to_str().unwrap_or("");
            match EMBEDDED.iter().find(|(file, _)| *file == name) {
                Some((_, bytes)) => file_response(&path, Body::Bytes(bytes.to_vec())),
                None => not_found(),
            }
        }
        Www::Dir(root) => {
            let Ok(path) = resolve(root, url_path) else {
                return not_found();
            };
            match smol::unblock(move || open(path)).await {
                Ok((file, len, path)) => file_response(&path, Body::File(file, len)),
                Err(_) => not_found(),
            }
        }
    }
}

/// Opens `path` (its `index.html` for a directory): the file, its length and its path.
fn open(mut path: PathBuf) -> std::io::Result<(std::fs::File, u64, PathBuf)> {
    let mut file = std::fs::File::open(&path)?;
    let mut meta = file.metadata()?;
    if meta.is_dir() {
        path.push("index.html");
        file = std::fs::File::open(&path)?;
        meta = file.metadata()?;
    }
    if !meta.is_file() {
        return Err(std::io::ErrorKind::NotFound.into());
    }
    Ok((file, meta.len(), path))
}

fn file_response(path: &Path, body: Body) -> Response {
    let mut res = Response::new(Status::OK)
        .with_header("Content-Type", content_type(path))
        .with_header("Cache-Control", "no-cache")
        .with_header("X-Content-Type-Options", "nosniff");
    res.body = body;
    res
}

/// Why a static path was refused; every case is a 404 so nothing about the disk leaks.
#[derive(Debug)]
struct NotFound;

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not found")
    }
}

/// Maps a URL path to a file under `root`, refusing anything that could leave it.
fn resolve(root: &Path, url_path: &str) -> Result<PathBuf, NotFound> {
    let decoded = percent_encoding::percent_decode_str(url_path)
        .decode_utf8()
        .map_err(|_| NotFound)?;
    let mut path = root.to_path_buf();
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        // Dot-files, parent and current directory, backslashes and NUL never name a file
        // under `root`; refuse them rather than normalise them.
        if segment.starts_with('.') || segment.contains(['\\', '\0']) {
            return Err(NotFound);
        }
        let mut components = Path::new(segment).components();
        match (components.next(), components.next()) {
            (Some(Component::Normal(part)), None) => path.push(part),
            _ => return Err(NotFound),
        }
    }
    if decoded.ends_with('/') || path == root {
        path.push("index.html");
    }
    Ok(path)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "txt" | "md" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url_path: &str, expected: Option<&str>) {
        let got = resolve(Path::new("/w"), url_path).ok();
        assert_eq!(
            got.as_deref(),
            expected.map(Path::new),
            "resolve({url_path:?})"
        );
    }

    #[test]
    fn static_paths_stay_under_the_root() {
        check("/", Some("/w/index.html"));
        check("/app.js", Some("/w/app.js"));
        check("/pkg/x.wasm", Some("/w/pkg/x.wasm"));
        check("/pkg/", Some("/w/pkg/index.html"));
        check("//app.js", Some("/w/app.js"));
        check("/../etc/passwd", None);
        check("/pkg/../../etc/passwd", None);
        check("/%2e%2e/etc/passwd", None);
        check("/%2E%2E%2Fetc%2Fpasswd", None);
        check("/a/..%2f..%2fsecret", None);
        check("/..%5c..%5csecret", None);
        check("/.git/config", None);
        check("/a%00b", None);
        check("/%ff", None);
    }

    #[test]
    fn the_embedded_page_is_the_repository_s() {
        let page = futures_lite::future::block_on(serve(&Www::Embedded, "/"));
        assert_eq!(page.status, Status::OK);
        assert!(matches!(&page.body, Body::Bytes(b) if b.starts_with(b"<!doctype html>")));
        let wasm = futures_lite::future::block_on(serve(&Www::Embedded, "/pkg/ssecast_wasm.js"));
        assert_eq!(wasm.status, Status::NOT_FOUND);
    }
}
