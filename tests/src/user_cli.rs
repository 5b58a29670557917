//! `smsotp`, the users' command, run as a given user against a test bus,
//! answering its questions as a person would (after reading what it showed).

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::tools::{built, require, wait_for};

pub struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<String>>,
}

/// Starts `smsotp --bus BUS ARGS` as `uid` (0 runs as root directly).
pub fn start(bus_address: &str, uid: u32, args: &[&str]) -> Session {
    let mut cmd = if uid == 0 {
        Command::new(&built().smsotp)
    } else {
        let mut c = Command::new(require("setpriv", "util-linux"));
        c.args([format!("--reuid={uid}"), format!("--regid={uid}"), "--clear-groups".into()]).arg(&built().smsotp);
        c
    };
    let mut child = cmd
        .arg("--bus")
        .arg(bus_address)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = Arc::new(Mutex::new(String::new()));
    for stream in
        [Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>, Box::new(child.stderr.take().unwrap())]
    {
        let out = out.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stream);
            let mut buf = Vec::new();
            while let Ok(n) = r.read_until(b' ', &mut buf) {
                if n == 0 {
                    break;
                }
                out.lock().unwrap().push_str(&String::from_utf8_lossy(&buf));
                buf.clear();
            }
        });
    }
    let stdin = child.stdin.take();
    Session { child, stdin, out }
}

impl Session {
    /// Everything shown so far (stdout and stderr).
    pub fn shown(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// Waits until `text` has been shown; returns all shown so far.
    pub fn wait_for(&self, text: &str) -> String {
        wait_for(&format!("smsotp to show {text:?}"), Duration::from_secs(20), || self.shown().contains(text));
        self.shown()
    }

    pub fn answer(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Closes stdin and waits for the exit code and the whole output.
    pub fn finish(mut self) -> (i32, String) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        // The reader threads end with the pipes.
        wait_for("smsotp's output to be read", Duration::from_secs(5), || Arc::strong_count(&self.out) == 1);
        (status.code().unwrap_or(-1), self.shown())
    }
}

/// Runs `smsotp ARGS` as `uid` to the end without answering anything.
pub fn run(bus_address: &str, uid: u32, args: &[&str]) -> (i32, String) {
    start(bus_address, uid, args).finish()
}
