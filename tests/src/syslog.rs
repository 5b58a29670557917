//! A stand-in for /dev/log, so tests can read what pam_sms logged.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub struct SyslogCapture {
    pub path: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl SyslogCapture {
    pub fn start() -> SyslogCapture {
        let dir = crate::tools::private_tempdir();
        let path = dir.path().join("log");
        let sock = UnixDatagram::bind(&path).unwrap();
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let l = lines.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while let Ok(n) = sock.recv(&mut buf) {
                l.lock().unwrap().push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        });
        SyslogCapture { path, lines, _dir: dir }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    pub fn text(&self) -> String {
        self.lines().join("\n")
    }

    /// The text once it contains `needle` (or after 5 s): a datagram the
    /// module sent just before it returned may not have been read yet.
    pub fn text_with(&self, needle: &str) -> String {
        crate::tools::poll(std::time::Duration::from_secs(5), || self.text().contains(needle));
        self.text()
    }
}
