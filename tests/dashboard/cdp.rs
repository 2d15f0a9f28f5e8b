//! A headless Chromium driven through the DevTools protocol over a pipe
//! (`--remote-debugging-pipe`: commands on the browser's fd 3, answers on its fd 4, each
//! message a JSON text ended by a NUL byte), so that a test can act as a person does: type
//! into fields, press keys, click, wait for the page, and read what it logged and asked for.
//! No crate beyond tokio: the pipe needs no WebSocket.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{oneshot, SemaphorePermit};

type Waiting = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// One browser with one page.
pub struct Browser {
    _child: Child,
    _turn: SemaphorePermit<'static>,
    _profile: tempfile::TempDir,
    input: ChildStdin,
    next_id: u64,
    session: String,
    waiting: Waiting,
    events: Arc<Mutex<Vec<Value>>>,
}

impl Browser {
    /// Starts Chromium (`args`: the dashboard tests' usual flags) with one blank page whose
    /// console, log and network are recorded; `turn` is held as long as the browser runs.
    pub async fn launch(
        chromium: &str,
        args: impl Fn(&Path) -> Vec<String>,
        turn: SemaphorePermit<'static>,
    ) -> Self {
        let profile = tempfile::tempdir().unwrap();
        // Chromium reads commands on fd 3 and writes answers on fd 4: the shell hands it our
        // stdin and stdout there, and its own stdout goes to stderr.
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>&2"#)
            .arg(chromium)
            .args(args(profile.path()))
            .args([
                "--remote-debugging-pipe",
                "--disable-features=AutofillServerCommunication",
                "about:blank",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromium starts");
        let input = child.stdin.take().unwrap();
        let output = child.stdout.take().unwrap();
        let waiting: Waiting = Arc::default();
        let events: Arc<Mutex<Vec<Value>>> = Arc::default();
        let (w, e) = (waiting.clone(), events.clone());
        tokio::spawn(async move {
            let mut reader = BufReader::new(output);
            let mut message = Vec::new();
            while reader.read_until(0, &mut message).await.unwrap_or(0) > 0 {
                message.pop_if(|b| *b == 0);
                if let Ok(value) = serde_json::from_slice::<Value>(&message) {
                    match value["id"].as_u64() {
                        Some(id) => {
                            if let Some(tx) = w.lock().unwrap().remove(&id) {
                                let _ = tx.send(value);
                            }
                        }
                        None => e.lock().unwrap().push(value),
                    }
                }
                message.clear();
            }
        });
        let mut browser = Self {
            _child: child,
            _turn: turn,
            _profile: profile,
            input,
            next_id: 0,
            session: String::new(),
            waiting,
            events,
        };
        let target = browser
            .call(None, "Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let target = target["targetId"].as_str().unwrap().to_owned();
        let attached = browser
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target, "flatten": true}),
            )
            .await;
        browser.session = attached["sessionId"].as_str().unwrap().to_owned();
        for domain in ["Page", "Runtime", "Log", "Network"] {
            browser.send(&format!("{domain}.enable"), json!({})).await;
        }
        browser
    }

    async fn call(&mut self, session: Option<String>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().unwrap().insert(id, tx);
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.input.write_all(&bytes).await.unwrap();
        self.input.flush().await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .unwrap_or_else(|_| panic!("no answer to {method} within 60 s"))
            .unwrap();
        assert!(answer["error"].is_null(), "{method} failed: {answer}");
        answer["result"].clone()
    }

    /// A command to the page.
    pub async fn send(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.call(Some(session), method, params).await
    }

    /// Opens `url` and waits until its document has loaded.
    pub async fn goto(&mut self, url: &str) {
        self.send("Page.navigate", json!({"url": url})).await;
        self.wait_for("document.readyState === 'complete'", "the page loads")
            .await;
    }

    /// The value of `expression` (awaited when it is a promise); a thrown error fails the
    /// test.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let answer = self
            .send(
                "Runtime.evaluate",
                json!({"expression": expression, "awaitPromise": true, "returnByValue": true, "userGesture": true}),
            )
            .await;
        assert!(
            answer["exceptionDetails"].is_null(),
            "{expression} threw: {}",
            answer["exceptionDetails"]
        );
        answer["result"]["value"].clone()
    }

    /// The text of `expression`.
    pub async fn text(&mut self, expression: &str) -> String {
        let value = self.eval(expression).await;
        value
            .as_str()
            .unwrap_or_else(|| panic!("{expression} is {value}, not a string"))
            .to_owned()
    }

    /// Waits up to 20 s for `condition` (a JavaScript expression) to be true.
    pub async fn wait_for(&mut self, condition: &str, what: &str) {
        for _ in 0..200 {
            if self.eval(&format!("Boolean({condition})")).await == json!(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let body = self.eval("document.body.innerText").await;
        panic!("waited 20 s for {what} ({condition}); the page says:\n{body}");
    }

    /// Whether the element with `id` is shown (it and its ancestors not hidden).
    pub async fn visible(&mut self, id: &str) -> bool {
        self.eval(&format!(
            "(() => {{ const e = document.getElementById({id:?}); return !!e && e.checkVisibility(); }})()"
        ))
        .await
            == json!(true)
    }

    /// Types `value` into the field `id` as a person would (focus, replace, input events).
    pub async fn type_into(&mut self, id: &str, value: &str) {
        self.eval(&format!("document.getElementById({id:?}).focus()"))
            .await;
        self.eval(&format!("document.getElementById({id:?}).select?.()"))
            .await;
        self.send("Input.insertText", json!({"text": value})).await;
        if value.is_empty() {
            self.key("Delete", 46).await;
        }
        let now = self
            .text(&format!("document.getElementById({id:?}).value"))
            .await;
        assert_eq!(now, value, "#{id} holds what was typed");
    }

    /// Chooses `value` in the select `id`.
    pub async fn choose(&mut self, id: &str, value: &str) {
        self.eval(&format!(
            "(() => {{ const e = document.getElementById({id:?}); e.focus(); e.value = {value:?}; \
             e.dispatchEvent(new Event('change', {{bubbles: true}})); }})()"
        ))
        .await;
    }

    /// Presses a key on the focused element (`Enter` 13, `Tab` 9, `Escape` 27…).
    pub async fn key(&mut self, key: &str, code: u32) {
        let text = if key == "Enter" { "\r" } else { "" };
        for kind in ["keyDown", "keyUp"] {
            self.send(
                "Input.dispatchKeyEvent",
                json!({"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code,
                       "nativeVirtualKeyCode": code, "text": if kind == "keyDown" { text } else { "" }}),
            )
            .await;
        }
    }

    /// Clicks the element `selector` at its centre with the mouse, as a person would.
    pub async fn click(&mut self, selector: &str) {
        // The element's centre, once the element there is it: a page still laying out (a
        // refresh that grew a table above it, a dialog closing over it) is given two frames
        // at a time, up to 2 s, so that the press does not land on something else.
        let mut at = Value::Null;
        for _ in 0..60 {
            at = self
                .eval(&format!(
                    "(async () => {{ const e = document.querySelector({selector:?}); if (!e || !e.checkVisibility()) return null; \
                     e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
                     const [x, y] = [r.x + r.width / 2, r.y + r.height / 2]; \
                     if (e.contains(document.elementFromPoint(x, y))) return [x, y]; \
                     await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))); \
                     return 'covered'; }})()"
                ))
                .await;
            if at != json!("covered") {
                break;
            }
        }
        let (x, y) = match at.as_array().map(Vec::as_slice) {
            Some([x, y]) => (x.as_f64().unwrap(), y.as_f64().unwrap()),
            _ => panic!("nothing visible to click at {selector} ({at})"),
        };
        for kind in ["mousePressed", "mouseReleased"] {
            self.send(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            )
            .await;
        }
    }

    /// Sets the viewport to `width`×`height` CSS pixels (a phone below 600).
    pub async fn resize(&mut self, width: u32, height: u32) {
        self.send(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}),
        )
        .await;
        // Two frames: the layout settles.
        self.eval("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
            .await;
    }

    /// A PNG of the page at `width`×`height`, the whole page's height when `full`.
    pub async fn screenshot(&mut self, path: &Path, (width, height): (u32, u32), full: bool) {
        self.resize(width, height).await;
        let mut params = json!({"format": "png"});
        if full {
            let tall = self
                .eval("Math.ceil(document.documentElement.scrollHeight)")
                .await
                .as_u64()
                .unwrap();
            params["clip"] = json!({"x": 0, "y": 0, "width": width, "height": tall.max(u64::from(height)), "scale": 1});
            params["captureBeyondViewport"] = json!(true);
        }
        let shot = self.send("Page.captureScreenshot", params).await;
        let png = base64_decode(shot["data"].as_str().unwrap());
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(path, png).unwrap();
    }

    /// What the page wrote to the console, threw, or had logged about it, one line each.
    pub fn console(&self) -> Vec<String> {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .filter_map(|e| {
                let p = &e["params"];
                match e["method"].as_str()? {
                    "Runtime.consoleAPICalled" => {
                        Some(format!("console.{}: {}", p["type"], p["args"]))
                    }
                    "Runtime.exceptionThrown" => {
                        Some(format!("exception: {}", p["exceptionDetails"]))
                    }
                    "Log.entryAdded" => Some(format!(
                        "log {} {} {}: {}",
                        p["entry"]["source"],
                        p["entry"]["level"],
                        p["entry"]["url"],
                        p["entry"]["text"]
                    )),
                    _ => None,
                }
            })
            .collect()
    }

    /// The URL of every request the page made.
    pub fn requests(&self) -> Vec<String> {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .filter_map(|e| e["params"]["request"]["url"].as_str().map(str::to_owned))
            .collect()
    }
}

/// Standard base64 (with padding), as the protocol sends screenshots.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let bytes: Vec<u8> = text.bytes().filter(|c| *c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, c)| n | (value(*c) << (18 - 6 * i)));
        let [_, a, b, c] = n.to_be_bytes();
        out.extend_from_slice(&[a, b, c][..chunk.len() - 1]);
    }
    out
}

#[test]
fn base64_decodes_what_it_should() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("aGk="), b"hi");
    assert_eq!(base64_decode("YWJj"), b"abc");
}
