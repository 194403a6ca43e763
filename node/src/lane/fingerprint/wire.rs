//! The reader protocol's messages (module docs of [`fingerprint`](super)) as pure functions, and
//! a newline reader that never buffers more than a limit.

use std::io;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use zeroize::Zeroize;

use super::{FingerprintCapture, FingerprintError};

/// Longest `timeout_ms` a request may carry (ten minutes).
pub const MAX_CAPTURE_TIMEOUT_MS: u64 = 600_000;

/// A capture request as the reader side receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureRequest {
    /// How long to wait for a finger.
    pub timeout: Duration,
}

#[derive(Deserialize)]
struct RequestWire {
    op: String,
    timeout_ms: u64,
}

#[derive(Deserialize)]
struct ReplyWire {
    quality: Option<u64>,
    template: Option<String>,
    error: Option<String>,
    message: Option<String>,
}

/// The request line (newline included) for one capture.
pub fn encode_request(timeout: Duration) -> Vec<u8> {
    let ms = u64::try_from(timeout.as_millis())
        .unwrap_or(u64::MAX)
        .min(MAX_CAPTURE_TIMEOUT_MS);
    let mut line = serde_json::json!({ "op": "capture", "timeout_ms": ms })
        .to_string()
        .into_bytes();
    line.push(b'\n');
    line
}

/// A request line (without its newline), or why it is not one.
pub fn decode_request(line: &[u8]) -> Result<CaptureRequest, String> {
    let req: RequestWire =
        serde_json::from_slice(line).map_err(|e| format!("not a request: {e}"))?;
    if req.op != "capture" {
        return Err(format!("unknown op {:?}", req.op));
    }
    if req.timeout_ms > MAX_CAPTURE_TIMEOUT_MS {
        return Err(format!(
            "timeout_ms {} is over {MAX_CAPTURE_TIMEOUT_MS}",
            req.timeout_ms
        ));
    }
    Ok(CaptureRequest {
        timeout: Duration::from_millis(req.timeout_ms),
    })
}

/// The reply line (newline included) carrying `capture`. The caller should wipe it once sent.
pub fn encode_capture(capture: &FingerprintCapture) -> Vec<u8> {
    let mut hex = hex::encode(&capture.template);
    let mut line = format!(
        "{{\"quality\":{},\"template\":\"{hex}\"}}\n",
        capture.quality
    )
    .into_bytes();
    hex.zeroize();
    line.shrink_to_fit();
    line
}

/// The reply line (newline included) for a failure.
pub fn encode_error(code: &str, message: Option<&str>) -> Vec<u8> {
    let value = match message {
        Some(m) => serde_json::json!({ "error": code, "message": m }),
        None => serde_json::json!({ "error": code }),
    };
    let mut line = value.to_string().into_bytes();
    line.push(b'\n');
    line
}

/// A reply line (without its newline): the capture, or the failure it reports.
pub fn decode_reply(line: &[u8]) -> Result<FingerprintCapture, FingerprintError> {
    let mut reply: ReplyWire = serde_json::from_slice(line)
        .map_err(|e| FingerprintError::Protocol(format!("not a reply: {e}")))?;
    let result = interpret(&reply);
    if let Some(t) = reply.template.as_mut() {
        t.zeroize();
    }
    result
}

fn interpret(reply: &ReplyWire) -> Result<FingerprintCapture, FingerprintError> {
    match (&reply.error, reply.quality, &reply.template) {
        (Some(code), None, None) => Err(match code.as_str() {
            "no_finger" => FingerprintError::NoFinger,
            "timeout" => FingerprintError::Timeout { after: None },
            _ => FingerprintError::Reader {
                code: bounded(code, 64),
                message: reply.message.as_deref().map(|m| bounded(m, 256)),
            },
        }),
        (None, Some(quality), Some(template)) => {
            let quality = u8::try_from(quality)
                .ok()
                .filter(|q| *q <= 100)
                .ok_or_else(|| {
                    FingerprintError::Protocol(format!("quality {quality} is not 0–100"))
                })?;
            let template = hex::decode(template)
                .map_err(|e| FingerprintError::Protocol(format!("template is not hex: {e}")))?;
            if template.is_empty() {
                return Err(FingerprintError::Protocol("empty template".to_string()));
            }
            Ok(FingerprintCapture { quality, template })
        }
        (Some(_), _, _) => Err(FingerprintError::Protocol(
            "a reply has either \"error\" or \"quality\" and \"template\", not both".to_string(),
        )),
        (None, None, _) => Err(FingerprintError::Protocol(
            "reply without quality".to_string(),
        )),
        (None, Some(_), None) => Err(FingerprintError::Protocol(
            "reply without template".to_string(),
        )),
    }
}

/// At most `max` characters of `s` (reader-supplied text kept short for logs).
fn bounded(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Why a line could not be read.
#[derive(Debug)]
pub enum LineError {
    /// The stream failed.
    Io(io::Error),
    /// The line is longer than the limit (the stream is left mid-line).
    TooLong,
    /// The stream ended in the middle of a line.
    Truncated,
}

/// Reads one `\n`-terminated line into `buf` (cleared first, newline dropped), holding at most
/// `max` bytes including the newline. `Ok(false)`: the stream ended cleanly before a line began.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
    buf: &mut Vec<u8>,
) -> Result<bool, LineError> {
    buf.zeroize();
    buf.clear();
    loop {
        let available = reader.fill_buf().await.map_err(LineError::Io)?;
        if available.is_empty() {
            return if buf.is_empty() {
                Ok(false)
            } else {
                Err(LineError::Truncated)
            };
        }
        if let Some(pos) = available.iter().position(|&b| b == b'\n') {
            if buf.len() + pos + 1 > max {
                return Err(LineError::TooLong);
            }
            buf.extend_from_slice(&available[..pos]);
            reader.consume(pos + 1);
            return Ok(true);
        }
        let n = available.len();
        if buf.len() + n >= max {
            return Err(LineError::TooLong);
        }
        buf.extend_from_slice(available);
        reader.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_bad_ones_are_refused() {
        let line = encode_request(Duration::from_millis(5000));
        assert_eq!(line, b"{\"op\":\"capture\",\"timeout_ms\":5000}\n");
        assert_eq!(
            decode_request(&line[..line.len() - 1]),
            Ok(CaptureRequest {
                timeout: Duration::from_secs(5)
            })
        );
        assert_eq!(
            encode_request(Duration::from_secs(100_000)),
            b"{\"op\":\"capture\",\"timeout_ms\":600000}\n"
        );
        for bad in [
            &b""[..],
            b"{",
            b"{\"op\":\"enrol\",\"timeout_ms\":1}",
            b"{\"op\":\"capture\"}",
            b"{\"op\":\"capture\",\"timeout_ms\":-1}",
            b"{\"op\":\"capture\",\"timeout_ms\":600001}",
            b"[1,2]",
        ] {
            assert!(
                decode_request(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn replies() {
        let capture = FingerprintCapture {
            quality: 72,
            template: vec![0x46, 0x4d, 0x52, 0x00],
        };
        let line = encode_capture(&capture);
        assert_eq!(line, b"{\"quality\":72,\"template\":\"464d5200\"}\n");
        assert_eq!(decode_reply(&line[..line.len() - 1]), Ok(capture));
        let no_finger = encode_error("no_finger", None);
        assert_eq!(no_finger, b"{\"error\":\"no_finger\"}\n");

        type Case = (&'static str, Result<(u8, usize), FingerprintError>);
        let cases: &[Case] = &[
            (r#"{"quality":0,"template":"00"}"#, Ok((0, 1))),
            (
                r#"{"quality":100,"template":"ABCDEF","extra":1}"#,
                Ok((100, 3)),
            ),
            (r#"{"error":"no_finger"}"#, Err(FingerprintError::NoFinger)),
            (
                r#"{"error":"timeout"}"#,
                Err(FingerprintError::Timeout { after: None }),
            ),
            (
                r#"{"error":"device","message":"sensor cold"}"#,
                Err(FingerprintError::Reader {
                    code: "device".into(),
                    message: Some("sensor cold".into()),
                }),
            ),
            (
                r#"{"error":"busy"}"#,
                Err(FingerprintError::Reader {
                    code: "busy".into(),
                    message: None,
                }),
            ),
        ];
        for (line, want) in cases {
            let got = decode_reply(line.as_bytes()).map(|c| (c.quality, c.template.len()));
            assert_eq!(&got, want, "{line}");
        }
        for bad in [
            "",
            "null",
            "{}",
            "not json",
            r#"{"quality":101,"template":"00"}"#,
            r#"{"quality":-1,"template":"00"}"#,
            r#"{"quality":1e3,"template":"00"}"#,
            r#"{"quality":50}"#,
            r#"{"template":"00"}"#,
            r#"{"quality":50,"template":""}"#,
            r#"{"quality":50,"template":"0g"}"#,
            r#"{"quality":50,"template":"abc"}"#,
            r#"{"quality":"50","template":"00"}"#,
            r#"{"quality":50,"template":"00","error":"device"}"#,
            r#"{"error":42}"#,
        ] {
            let err = decode_reply(bad.as_bytes()).expect_err(bad);
            assert_eq!(err.code(), "protocol", "{bad}: {err}");
        }
    }

    #[tokio::test]
    async fn lines_are_bounded() {
        async fn read_all(input: &[u8], max: usize) -> Vec<String> {
            let mut r = tokio::io::BufReader::with_capacity(4, input);
            let mut buf = Vec::new();
            let mut out = Vec::new();
            loop {
                match read_line(&mut r, max, &mut buf).await {
                    Ok(true) => out.push(String::from_utf8_lossy(&buf).into_owned()),
                    Ok(false) => {
                        out.push("<eof>".into());
                        return out;
                    }
                    Err(e) => {
                        out.push(format!("<{e:?}>"));
                        return out;
                    }
                }
            }
        }
        assert_eq!(
            read_all(b"ab\ncdefg\n\n", 6).await,
            ["ab", "cdefg", "", "<eof>"]
        );
        assert_eq!(read_all(b"ab\ncdefgh\n", 6).await, ["ab", "<TooLong>"]);
        assert_eq!(read_all(b"abcdefghijkl", 6).await, ["<TooLong>"]);
        assert_eq!(read_all(b"ab\ncd", 6).await, ["ab", "<Truncated>"]);
        assert_eq!(read_all(b"", 6).await, ["<eof>"]);
    }
}
