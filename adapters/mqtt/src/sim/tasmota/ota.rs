//! The plug's OTA download: an HTTP GET of the OtaUrl, as Tasmota's `ESPhttpUpdate` does it,
//! and the check of the image. A simulated image starts with `SIMFW:<version>\n` (as for the
//! Modbus simulator); anything else is refused the way an ESP8266 refuses an image without its
//! magic byte. Failure reasons are the ESP8266 core's own words (`ESP8266httpUpdate.cpp`,
//! `getLastErrorString`), which Tasmota reports as `{"Upgrade":"Failed <reason>"}`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Largest image the simulated plug takes (its free program space).
const MAX_IMAGE: usize = 1024 * 1024;

/// How long the download may take (Tasmota's HTTP client times out after 8 s of silence).
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Downloads the image at `url` and returns the version it declares, or the reason Tasmota
/// would report.
pub(super) async fn download(url: &str, mac: &str) -> Result<String, String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|_| "HTTP error: connection refused".to_owned())?;
    if uri.scheme_str() != Some("http") {
        return Err("HTTP error: unsupported protocol".to_owned());
    }
    let request = hyper::Request::get(uri)
        .header("User-Agent", "ESP8266-http-Update")
        .header("x-ESP8266-STA-MAC", mac)
        .header("x-ESP8266-free-space", MAX_IMAGE.to_string())
        .body(Empty::<Bytes>::new())
        .map_err(|_| "HTTP error: connection refused".to_owned())?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let fetch = async {
        let response = client
            .request(request)
            .await
            .map_err(|_| "HTTP error: connection refused".to_owned())?;
        match response.status().as_u16() {
            200 => {}
            404 => return Err("File Not Found (404)".to_owned()),
            403 => return Err("Forbidden (403)".to_owned()),
            401 => return Err("Unauthorized (401)".to_owned()),
            _ => return Err("Wrong HTTP Code".to_owned()),
        }
        let body = Limited::new(response.into_body(), MAX_IMAGE)
            .collect()
            .await
            .map_err(|_| "Not Enough space".to_owned())?
            .to_bytes();
        Ok(body)
    };
    let body = tokio::time::timeout(DOWNLOAD_TIMEOUT, fetch)
        .await
        .map_err(|_| "HTTP error: read Timeout".to_owned())??;
    image_version(&body).ok_or_else(|| "Verify Bin Header Failed".to_owned())
}

/// The version a simulated image declares in its `SIMFW:<version>\n` header.
pub(super) fn image_version(image: &[u8]) -> Option<String> {
    let header = image.strip_prefix(b"SIMFW:")?;
    let end = header.iter().position(|b| *b == b'\n')?;
    let version = std::str::from_utf8(&header[..end]).ok()?;
    let valid = !version.is_empty()
        && version.len() <= 32
        && version
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'(' && b != b')');
    valid.then(|| version.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_images_with_a_simfw_header_should_install() {
        assert_eq!(
            image_version(b"SIMFW:13.2.0\n\x00\x01"),
            Some("13.2.0".into())
        );
        assert_eq!(image_version(b"\xe9\x01SIMFW:13.2.0\n"), None);
        assert_eq!(image_version(b"SIMFW:13.2.0"), None);
        assert_eq!(image_version(b"SIMFW:\n"), None);
        assert_eq!(image_version(b"SIMFW:1 3\n"), None);
    }
}
